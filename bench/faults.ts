import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { startOwnPostgres, startOwnRedis } from '../packages/server/test/own-engines.js';
import { sigterm, workerKill } from './fault-jobs.js';
import {
  baseConfig,
  client,
  countMissing,
  firstGood,
  inNewTenant,
  killed,
  serverProcess,
  sleep,
  type Tally,
  tally,
  userLoad,
} from './fault-lib.js';
import { ADMIN, record, stamp, startApp, table } from './lib.js';

/**
 * The fault suite (issue 11): each scenario runs load against the program,
 * breaks an engine or the process, and counts what a client saw and what
 * survived: acknowledged writes lost, jobs lost or stuck, duplicate runs,
 * requests that hung (no answer in 10 s), 500s, and the time from the fault's
 * end to the first good answer. `node --import tsx bench/faults.ts [name]`.
 */
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
    const { call } = await inNewTenant(base, 'frozen');
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
    const { call } = await inNewTenant(base, 'redis-out');
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
