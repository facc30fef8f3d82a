import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { loadConfig, type PlexicaConfig } from '../packages/server/src/config/index.js';
import { startOwnPostgres, startOwnRedis } from '../packages/server/test/own-engines.js';
import { ADMIN, record, stamp, startApp, table } from './lib.js';

/**
 * The fault suite (issue 11): each scenario runs load against the program,
 * breaks an engine or the process, and counts what a client saw and what
 * survived: acknowledged writes lost, jobs lost or stuck, duplicate runs,
 * requests that hung (no answer in 10 s), 500s, and the time from the fault's
 * end to the first good answer. `node --import tsx bench/faults.ts [name]`.
 */
const here = path.dirname(fileURLToPath(import.meta.url));
const HUNG_MS = 10_000;

interface Tally {
  scenario: string;
  runs: number;
  acked: number;
  lost: number;
  jobsLost: number;
  duplicates: number;
  hung: number;
  s500: number;
  s503: number;
  refused: number;
  recoverMs: number[];
  note: string;
}
const tally = (scenario: string): Tally => ({
  scenario,
  runs: 0,
  acked: 0,
  lost: 0,
  jobsLost: 0,
  duplicates: 0,
  hung: 0,
  s500: 0,
  s503: 0,
  refused: 0,
  recoverMs: [],
  note: '',
});

// biome-ignore lint/suspicious/noExplicitAny: the suite reads response bodies field by field
type Call = (method: string, url: string, body?: unknown) => Promise<{ status: number; body: any }>;
const client =
  (base: () => string, token: () => string, tenant?: string): Call =>
  async (method, url, body) => {
    const res = await fetch(`${base()}${url}`, {
      method,
      headers: {
        authorization: `Bearer ${token()}`,
        ...(tenant && { 'x-tenant-id': tenant }),
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(HUNG_MS),
    });
    const text = await res.text();
    return { status: res.status, body: text.startsWith('{') ? JSON.parse(text) : text };
  };

/** `connections` loops creating users until `stop`; acknowledged emails land in `acked`. */
function userLoad(call: Call, t: Tally, acked: Set<string>, connections: number, prefix: string) {
  let stop = false;
  let n = 0;
  const loops = Array.from({ length: connections }, async () => {
    while (!stop) {
      const email = `${prefix}-${n++}@faults.test`;
      try {
        const res = await call('POST', '/api/v1/users', { email });
        if (res.status === 201) acked.add(email);
        else if (res.status >= 500 && res.status !== 503 && res.status !== 507) t.s500++;
        else if (res.status === 503) t.s503++;
      } catch (err) {
        if ((err as Error).name === 'TimeoutError') t.hung++;
        else {
          t.refused++;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
  });
  return async () => {
    stop = true;
    await Promise.all(loops);
  };
}

async function countMissing(call: Call, acked: Set<string>): Promise<number> {
  const seen = new Set<string>();
  for (let offset = 0; ; offset += 100) {
    const page = await call('GET', `/api/v1/users?limit=100&offset=${offset}`);
    for (const user of page.body.items as { email: string }[]) seen.add(user.email);
    if (page.body.items.length < 100) break;
  }
  return [...acked].filter((e) => !seen.has(e)).length;
}

async function firstGood(call: () => Promise<boolean>, started = performance.now()): Promise<number> {
  for (;;) {
    if (await call().catch(() => false)) return performance.now() - started;
    await new Promise((r) => setTimeout(r, 25));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function baseConfig(dataDir: string, overrides: Partial<PlexicaConfig> = {}): PlexicaConfig {
  return loadConfig(
    {},
    {
      dataDir,
      adminEmail: ADMIN.email,
      adminPassword: ADMIN.password,
      logLevel: 'silent',
      rateLimitUser: 10_000_000,
      rateLimitTenant: 100_000_000,
      rateLimitAnonymous: 10_000_000,
      port: 0,
      host: '127.0.0.1',
      ...overrides,
    },
  );
}

async function serverProcess(config: PlexicaConfig, marker: string, jobMs = 50) {
  const child = fork(path.join(here, 'fault-server.ts'), { execArgv: ['--import', 'tsx'], stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const address = await new Promise<string>((resolve, reject) => {
    child.once('message', (m: { address: string }) => resolve(m.address));
    void exited.then((code) => reject(new Error(`server exited with ${code}`)));
    child.send({ config, marker, jobMs });
  });
  return { child, address, exited };
}
const killed = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });

/** Embedded server kill -9 under write load, restarted at once (items 1 and the "keep it" of 0 lost). */
async function embeddedKill(rounds: number): Promise<Tally> {
  const t = tally('embedded server kill -9 under user writes, restarted at once');
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'plexica-fault-embedded-'));
  await (await PGlite.create(path.join(dataDir, 'pgdata'))).close();
  const marker = path.join(dataDir, 'marker.log');
  writeFileSync(marker, '');
  const config = baseConfig(dataDir);
  let server = await serverProcess(config, marker);
  let base = server.address;
  const login = await fetch(`${base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(ADMIN),
  }).then((r) => r.json() as Promise<{ accessToken: string }>);
  const token = login.accessToken;
  const admin = client(
    () => base,
    () => token,
  );
  const tenant = (await admin('POST', '/api/v1/tenants', { slug: 'faults', name: 'Faults' })).body
    .id as string;
  const call = client(
    () => base,
    () => token,
    tenant,
  );
  const acked = new Set<string>();
  // the reference: the same restart after a clean stop (SIGTERM), no load
  server.child.kill('SIGTERM');
  await server.exited;
  const cleanStart = performance.now();
  server = await serverProcess(config, marker);
  base = server.address;
  const reference = await firstGood(
    async () => (await call('GET', '/api/v1/users?limit=1')).status === 200,
    cleanStart,
  );
  for (let round = 0; round < rounds; round++) {
    t.runs++;
    const stop = userLoad(call, t, acked, 4, `kill${round}`);
    await sleep(1500);
    await killed(server.child);
    const restarted = performance.now();
    // a supervisor's restart: at once, on the same data dir
    server = await serverProcess(config, marker);
    base = server.address;
    t.recoverMs.push(
      await firstGood(async () => (await call('GET', '/api/v1/users?limit=1')).status === 200, restarted),
    );
    await stop();
  }
  t.acked = acked.size;
  t.lost = await countMissing(call, acked);
  t.note = `reference: restart after a clean stop ${(reference / 1000).toFixed(2)} s → ratio ${(t.recoverMs.reduce((a, b) => a + b, 0) / t.recoverMs.length / reference).toFixed(2)}; the token from before the first crash used throughout`;
  server.child.kill('SIGTERM');
  await server.exited;
  await rm(dataDir, { recursive: true, force: true });
  return t;
}

/** Own PostgreSQL frozen (SIGSTOP) under load, then thawed (item 3). */
async function postgresFrozen(freezeMs: number): Promise<Tally> {
  const t = tally(`PostgreSQL frozen ${freezeMs / 1000} s under user writes`);
  const pg = await startOwnPostgres();
  const { app, close } = await startApp('postgres', {
    databaseUrl: pg.url,
    databaseConnectTimeoutMs: 1000,
    databaseStatementTimeoutMs: 1000,
  });
  try {
    const base = (await app.start())!;
    const token = (
      await client(
        () => base,
        () => '',
      )('POST', '/api/v1/auth/login', ADMIN)
    ).body.accessToken;
    const admin = client(
      () => base,
      () => token,
    );
    const tenant = (await admin('POST', '/api/v1/tenants', { slug: 'frozen', name: 'Frozen' })).body.id;
    const call = client(
      () => base,
      () => token,
      tenant,
    );
    const acked = new Set<string>();
    t.runs++;
    const stop = userLoad(call, t, acked, 8, 'frozen');
    await sleep(1000);
    pg.freeze();
    await sleep(freezeMs);
    pg.thaw();
    const thawed = performance.now();
    t.recoverMs.push(
      await firstGood(async () => (await call('GET', '/api/v1/users?limit=1')).status === 200, thawed),
    );
    await sleep(500);
    await stop();
    t.acked = acked.size;
    t.lost = await countMissing(call, acked);
    t.note = '503 PLX_DATABASE_UNAVAILABLE while frozen (1 s timeouts)';
  } finally {
    pg.thaw();
    await close();
    await pg.stop();
  }
  return t;
}

/** Own Redis killed under job enqueues on BullMQ (rate limits on the same Redis), then restarted (items 2, 4). */
async function redisKilled(downMs: number): Promise<Tally> {
  const t = tally(`Redis killed ${downMs / 1000} s under job enqueues (BullMQ, rate limits on Redis)`);
  const redis = await startOwnRedis();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'plexica-fault-redis-'));
  await (await PGlite.create(path.join(dataDir, 'pgdata'))).close();
  const marker = path.join(dataDir, 'marker.log');
  writeFileSync(marker, '');
  const server = await serverProcess(
    baseConfig(dataDir, {
      redisUrl: redis.url,
      jobsDriver: 'redis',
      jobsRedisPrefix: 'faults',
      redisCommandTimeoutMs: 500,
      jobsLeaseSeconds: 10,
      purgeIntervalSeconds: 3600,
    }),
    marker,
    20,
  );
  try {
    const base = server.address;
    const token = (
      await client(
        () => base,
        () => '',
      )('POST', '/api/v1/auth/login', ADMIN)
    ).body.accessToken;
    const admin = client(
      () => base,
      () => token,
    );
    const tenant = (await admin('POST', '/api/v1/tenants', { slug: 'redis-out', name: 'Redis' })).body.id;
    const call = client(
      () => base,
      () => token,
      tenant,
    );
    const jobIds = new Set<string>();
    let stop = false;
    t.runs++;
    const loops = Array.from({ length: 4 }, async () => {
      while (!stop) {
        try {
          const res = await call('POST', '/api/v1/jobs', { type: 'fault.work' });
          if (res.status === 201) jobIds.add(res.body.id);
          else if (res.status === 503) t.s503++;
          else if (res.status >= 500) t.s500++;
        } catch (err) {
          if ((err as Error).name === 'TimeoutError') t.hung++;
          else t.refused++;
        }
      }
    });
    await sleep(1000);
    await redis.kill();
    await sleep(downMs);
    await redis.start();
    const back = performance.now();
    t.recoverMs.push(await firstGood(async () => (await call('GET', '/ready')).status === 200, back));
    await sleep(500);
    stop = true;
    await Promise.all(loops);
    t.acked = jobIds.size;
    // every acknowledged job runs (the sweep re-sends what the outage interrupted, every 30 s)
    const deadline = Date.now() + 60_000;
    const doneIds = () =>
      readFileSync(marker, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('done'))
        .map((l) => l.split(' ')[2]!);
    while (new Set(doneIds()).size < jobIds.size && Date.now() < deadline) await sleep(250);
    const done = doneIds();
    const unique = new Set(done);
    t.jobsLost = [...jobIds].filter((id) => !unique.has(id)).length;
    t.duplicates = done.length - unique.size;
    t.note = 'enqueues answered 503 PLX_JOBS_UNAVAILABLE while down; rate limits failed open';
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
    await redis.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
  return t;
}

/** SIGTERM while jobs run and requests are in flight (item 6). */
async function sigterm(): Promise<Tally> {
  const t = tally('SIGTERM under job load and user writes (embedded)');
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'plexica-fault-term-'));
  await (await PGlite.create(path.join(dataDir, 'pgdata'))).close();
  const marker = path.join(dataDir, 'marker.log');
  writeFileSync(marker, '');
  const server = await serverProcess(baseConfig(dataDir, { shutdownTimeoutMs: 10_000 }), marker, 1000);
  const base = server.address;
  const token = (
    await client(
      () => base,
      () => '',
    )('POST', '/api/v1/auth/login', ADMIN)
  ).body.accessToken;
  const admin = client(
    () => base,
    () => token,
  );
  const tenant = (await admin('POST', '/api/v1/tenants', { slug: 'term', name: 'Term' })).body.id;
  const call = client(
    () => base,
    () => token,
    tenant,
  );
  const jobs = await call('POST', '/api/v1/jobs/bulk', {
    jobs: Array.from({ length: 40 }, () => ({ type: 'fault.work' })),
  });
  const acked = new Set<string>();
  t.runs++;
  const stop = userLoad(call, t, acked, 4, 'term');
  await sleep(1500);
  const signalled = Date.now();
  server.child.kill('SIGTERM');
  const code = await server.exited;
  const ended = Date.now();
  await stop();
  const lines = readFileSync(marker, 'utf8').split('\n').filter(Boolean);
  const startedAfter = lines.filter(
    (l) => l.startsWith('start') && Number(l.split(' ')[1]) > signalled,
  ).length;
  const running =
    lines.filter((l) => l.startsWith('start')).length - lines.filter((l) => l.startsWith('done')).length;
  // the data must all be there on the next start
  const again = await serverProcess(baseConfig(dataDir), marker, 1000);
  const after = client(
    () => again.address,
    () => token,
    tenant,
  );
  t.acked = acked.size;
  t.lost = await countMissing(after, acked);
  again.child.kill('SIGTERM');
  await again.exited;
  t.note = `exit ${code} after ${ended - signalled} ms; ${jobs.body.items.length} jobs queued, ${startedAfter} started after SIGTERM, ${running} left unfinished`;
  t.recoverMs.push(ended - signalled);
  await rm(dataDir, { recursive: true, force: true });
  return t;
}

/** BullMQ workers killed mid-flood with the tenant at its limit, on PostgreSQL and the shared Redis (item 2). */
async function workerKill(jobs: number): Promise<Tally> {
  const t = tally(`BullMQ worker kill -9 mid-flood of ${jobs} jobs, tenant at its limit (lease 10 s)`);
  const overrides = {
    jobsDriver: 'redis' as const,
    redisUrl: process.env.PLEXICA_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
    jobsRedisPrefix: `plx-faults-${randomBytes(4).toString('hex')}`,
    jobsLeaseSeconds: 10,
    jobsPollIntervalSeconds: 1,
  };
  // this process only takes requests: every job runs in the worker processes, which write the marker
  const { app, close } = await startApp('postgres', { ...overrides, role: 'api' });
  const marker = path.join(app.config.dataDir, 'marker.log');
  writeFileSync(marker, '');
  app.services.jobs.define({ type: 'fault.work', handler: async () => null });
  const workers: ChildProcess[] = [];
  try {
    const base = (await app.start())!;
    const token = (
      await client(
        () => base,
        () => '',
      )('POST', '/api/v1/auth/login', ADMIN)
    ).body.accessToken;
    const admin = client(
      () => base,
      () => token,
    );
    const tenant = (await admin('POST', '/api/v1/tenants', { slug: 'flood', name: 'Flood' })).body.id;
    const call = client(
      () => base,
      () => token,
      tenant,
    );
    const workerConfig = { ...app.config, role: 'worker' as const };
    // the scheduler's sweep re-sends deliveries a killed worker claimed and never sent
    workers.push((await serverProcess({ ...app.config, role: 'scheduler' }, marker, 100)).child);
    const first = await serverProcess(workerConfig, marker, 100);
    workers.push(first.child);
    const ids = new Set<string>();
    for (let i = 0; i < jobs; i += 500) {
      const res = await call('POST', '/api/v1/jobs/bulk', {
        jobs: Array.from({ length: Math.min(500, jobs - i) }, () => ({ type: 'fault.work' })),
      });
      for (const job of res.body.items as { id: string }[]) ids.add(job.id);
    }
    t.acked = ids.size;
    t.runs++;
    console.log(`  ${ids.size} jobs enqueued`);
    await sleep(1500);
    await killed(first.child);
    const killedAt = performance.now();
    const second = await serverProcess(workerConfig, marker, 100);
    workers.push(second.child);
    const doneIds = () =>
      readFileSync(marker, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('done'))
        .map((l) => l.split(' ')[2]!);
    const deadline = Date.now() + 90_000;
    while (new Set(doneIds()).size < ids.size && Date.now() < deadline) await sleep(250);
    t.recoverMs.push(performance.now() - killedAt);
    console.log(`  ${new Set(doneIds()).size} done`);
    const done = doneIds();
    const unique = new Set(done);
    const missing = [...ids].filter((id) => !unique.has(id));
    t.jobsLost = missing.length;
    t.duplicates = done.length - unique.size;
    for (const id of missing.slice(0, 3))
      console.log('  not done:', JSON.stringify((await call('GET', `/api/v1/jobs/${id}`)).body));
    t.note =
      'recover = kill to the last job done; jobs of 100 ms, 8 per tenant at once; a scheduler process sweeps';
  } finally {
    for (const worker of workers) await killed(worker);
    console.log('  closing');
    await close();
  }
  return t;
}

const SCENARIOS: Record<string, () => Promise<Tally>> = {
  'worker-kill': () => workerKill(400),
  'embedded-kill': () => embeddedKill(3),
  'postgres-frozen': () => postgresFrozen(5000),
  'redis-killed': () => redisKilled(5000),
  sigterm,
};

const filter = process.argv[2];
const results: Tally[] = [];
for (const [name, run] of Object.entries(SCENARIOS)) {
  if (filter && !name.includes(filter)) continue;
  console.log(`▶ ${name}`);
  const result = await run();
  console.log(result);
  results.push(result);
}
const fmt = (ms: number[]) =>
  ms.length === 0 ? '—' : ms.map((m) => `${(m / 1000).toFixed(2)} s`).join(', ');
const markdown = `## Fault suite (\`bench/faults.ts\`, issue 11)

${stamp()}

Each scenario runs load against the program (HTTP over loopback, clients give up after 10 s = "hung"), breaks an engine or the process, and counts what clients saw and what survived. Writes are acknowledged user creations (201) or job enqueues; "lost" is an acknowledged one missing afterwards. "recover" is from the fault's end (restart, thaw, Redis back; for SIGTERM: from the signal to the exit) to the first good answer.

${table(
  [
    'scenario',
    'runs',
    'acked writes',
    'lost',
    'jobs lost/stuck',
    'duplicate runs',
    'hung',
    '500s',
    '503s',
    'refused conn.',
    'recover',
    'note',
  ],
  results.map((r) => [
    r.scenario,
    r.runs,
    r.acked,
    r.lost,
    r.jobsLost,
    r.duplicates,
    r.hung,
    r.s500,
    r.s503,
    r.refused,
    fmt(r.recoverMs),
    r.note,
  ]),
)}`;
if (!filter) await record('faults', markdown);
console.log(markdown);
process.exit(0);
