import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { systemContext, toTenantRef } from '../packages/server/src/context.js';
// the deliver job's concurrency: the reference runs as many POSTs at once
import { WEBHOOK_WORKER_CONCURRENCY } from '../packages/server/src/modules/webhooks/index.js';
import { signatureHeader } from '../packages/server/src/modules/webhooks/signing.js';
import { type Engine, percentile, record, stamp, startApp, table } from './lib.js';

/**
 * Issue 15's webhook targets, through the real app: event → first attempt P95
 * < 100 ms when idle; ≥ 1,000 deliveries/s to a local receiver with 100
 * endpoints; one endpoint answering in 10 s slows no other. The reference, in
 * the same run and to the same receiver: a bare loop of signed POSTs from this
 * process (HMAC included, same body size, same concurrency as the delivery
 * workers), with undici's keep-alive pool and with a fresh connection each
 * (what the outbound guard does: it never reuses a socket it did not check).
 */
const REDIS_URL = process.env.PLEXICA_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SAMPLES = 200;
const ENDPOINTS = 100;
const EVENTS = Number(process.env.PLEXICA_BENCH_WEBHOOK_EVENTS ?? 100);
const SLOW_MS = 10_000;
const RECEIVER = 'PLEXICA_BENCH_WEBHOOK_RECEIVER';
// times compared across processes and with the database are wall-clock times, the one clock they
// share: `timeOrigin + now()` of two processes here once disagreed by 150 ms for a whole run
const now = () => Date.now();

type Arrival = [path: string, id: string, at: number];

/** The receiver, in a child process of its own: `/slow…` answers after SLOW_MS, the rest at once. */
function runReceiver() {
  const arrivals: Arrival[] = [];
  const watches: { prefix: string; count: number; id: number }[] = [];
  let notify = false;
  const seen = new Map<string, number>();
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const path = req.url ?? '/';
      const id = String(req.headers['webhook-id'] ?? '');
      arrivals.push([path, id, now()]);
      if (notify) process.send?.({ arrived: id, path, at: now() });
      const prefix = path.split('/')[1] ?? '';
      seen.set(prefix, (seen.get(prefix) ?? 0) + 1);
      for (const w of watches.splice(0))
        if ((seen.get(w.prefix) ?? 0) >= w.count) process.send?.({ reply: w.id });
        else watches.push(w);
      if (prefix === 'slow') setTimeout(() => res.writeHead(200).end('ok'), SLOW_MS);
      else res.writeHead(200).end('ok');
    });
  });
  server.keepAliveTimeout = 30_000;
  process.on('message', (m: { id: number; cmd: string; prefix?: string; count?: number; on?: boolean }) => {
    if (m.cmd === 'arrivals') {
      // what was read is forgotten: the next scenario counts from zero
      seen.clear();
      process.send?.({ reply: m.id, arrivals: arrivals.splice(0) });
    } else if (m.cmd === 'notify') {
      notify = Boolean(m.on);
      process.send?.({ reply: m.id });
    } else if (m.cmd === 'watch') {
      const w = { prefix: m.prefix!, count: m.count!, id: m.id };
      if ((seen.get(w.prefix) ?? 0) >= w.count) process.send?.({ reply: w.id });
      else watches.push(w);
    }
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.send?.({ port: typeof address === 'object' && address ? address.port : 0 });
  });
}

async function startReceiver() {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [], {
    env: { ...process.env, [RECEIVER]: '1' },
  });
  const pending = new Map<number, (m: Record<string, unknown>) => void>();
  let arrivalListener: ((id: string, at: number) => void) | undefined;
  let nextId = 0;
  const port = await new Promise<number>((resolve) =>
    child.once('message', (m) => resolve((m as { port: number }).port)),
  );
  child.on('message', (raw) => {
    const m = raw as { reply?: number; arrived?: string; at?: number };
    if (m.arrived !== undefined) arrivalListener?.(m.arrived, m.at!);
    if (m.reply !== undefined) {
      pending.get(m.reply)?.(m as Record<string, unknown>);
      pending.delete(m.reply);
    }
  });
  const ask = (cmd: Record<string, unknown>) =>
    new Promise<Record<string, unknown>>((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      child.send({ ...cmd, id });
    });
  const host = `127.0.0.1:${port}`;
  return {
    host,
    url: (p: string) => `http://${host}${p}`,
    async onArrival(listener: ((id: string, at: number) => void) | undefined) {
      arrivalListener = listener;
      await ask({ cmd: 'notify', on: listener !== undefined });
    },
    /** Resolves when `count` requests under `/{prefix}/` arrived since `arrivals` was last read (or rejects after `ms`). */
    waitFor: (prefix: string, count: number, ms: number) =>
      Promise.race([
        ask({ cmd: 'watch', prefix, count }),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error(`${count} arrivals at /${prefix} within ${ms} ms`)), ms).unref(),
        ),
      ]),
    arrivals: async () => (await ask({ cmd: 'arrivals' })).arrivals as Arrival[],
    close: () => child.kill(),
  };
}
type Receiver = Awaited<ReturnType<typeof startReceiver>>;

const SECRET = `whsec_${randomBytes(24).toString('base64')}`;
const sampleBody = (tenantId: string) =>
  JSON.stringify({
    specversion: '1.0',
    id: crypto.randomUUID(),
    source: '/plexica/core',
    type: 'crm.deal.won',
    time: new Date().toISOString(),
    tenantid: tenantId,
    traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`,
    datacontenttype: 'application/json',
    data: { i: 0, deal: 'bench' },
  });

const signedHeaders = (body: string) => {
  const id = crypto.randomUUID();
  const timestamp = Math.floor(Date.now() / 1000);
  return {
    'content-type': 'application/json',
    'user-agent': 'Plexica-Webhooks/1.0',
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signatureHeader([SECRET], id, timestamp, body),
  };
};

const pooledPost = async (url: string, body: string) => {
  const res = await fetch(url, { method: 'POST', headers: signedHeaders(body), body });
  await res.text();
};
const freshPost = (url: string, body: string) =>
  new Promise<void>((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: signedHeaders(body), agent: false }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
    req.end(body);
  });

async function referenceLatency(rx: Receiver, post: typeof pooledPost, body: string) {
  const times: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const started = performance.now();
    await post(rx.url('/ref-lat'), body);
    times.push(performance.now() - started);
  }
  return times.sort((a, b) => a - b);
}

async function referenceRate(rx: Receiver, post: typeof pooledPost, body: string, total: number) {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: WEBHOOK_WORKER_CONCURRENCY }, async () => {
      while (next < total) {
        const n = next++;
        await post(rx.url(`/ref/${n % ENDPOINTS}`), body);
      }
    }),
  );
  return total / ((performance.now() - started) / 1000);
}

type Setup = { label: string; engine: Engine; jobs: 'postgres' | 'redis' };
const SETUPS: Setup[] = (
  [
    { label: 'PGlite + pg-boss (embedded default)', engine: 'pglite', jobs: 'postgres' },
    { label: 'PostgreSQL + pg-boss', engine: 'postgres', jobs: 'postgres' },
    { label: 'PostgreSQL + BullMQ (Redis)', engine: 'postgres', jobs: 'redis' },
  ] as Setup[]
).filter((s: Setup) => s.label.toLowerCase().includes(process.env.PLEXICA_BENCH_WEBHOOK_SETUP ?? ''));

/** Queries the app ran so far (the count of its `db_query_duration_seconds` histogram). */
async function queryCount(app: Awaited<ReturnType<typeof startApp>>['app']) {
  const text = (await app.server.inject({ method: 'GET', url: '/metrics' })).body;
  return [...text.matchAll(/^db_query_duration_seconds_count\{[^}]*\} (\d+)/gm)].reduce(
    (sum, m) => sum + Number(m[1]),
    0,
  );
}

async function openSetup(setup: Setup, rx: Receiver) {
  const prefix = `plx-bench-wh-${randomBytes(4).toString('hex')}`;
  const started = await startApp(setup.engine, {
    databasePoolSize: 10,
    outboundAllowHosts: [rx.host],
    eventsPublishRateLimit: 100_000_000,
    webhooksManageRateLimit: 100_000_000,
    ...(setup.jobs === 'redis' && { jobsDriver: 'redis', redisUrl: REDIS_URL, jobsRedisPrefix: prefix }),
  });
  await started.app.start();
  const { app } = started;
  let tenants = 0;
  /** A tenant with `paths.length` endpoints, each subscribed to every `crm.*` event. */
  const tenantWith = async (paths: string[]) => {
    const row = await app.services.tenants.create({ slug: `wh${tenants++}`, name: 'Webhooks bench' });
    const ctx = systemContext(randomBytes(16).toString('hex'), toTenantRef({ ...row, settings: {} }));
    for (const p of paths) await app.services.webhooks.create(ctx, { url: rx.url(p), eventTypes: ['crm.*'] });
    return { id: row.id, ctx };
  };
  return {
    ...started,
    tenantWith,
    async close() {
      await started.close();
      if (setup.jobs === 'redis') {
        const r = new Redis(REDIS_URL);
        const keys = await r.keys(`${prefix}:*`);
        if (keys.length) await r.del(...keys);
        await r.quit();
      }
    },
  };
}
type Opened = Awaited<ReturnType<typeof openSetup>>;

/** Scenario 1: one event at a time, publish (bus) → the receiver sees the attempt. */
async function idleLatency(s: Opened, rx: Receiver) {
  const tenant = await s.tenantWith(['/lat']);
  const published = new Map<string, number>();
  const times: number[] = [];
  for (let i = 0; i < SAMPLES + 10; i++) {
    let arrived: ((at: number) => void) | undefined;
    const got = new Promise<number>((r) => (arrived = r));
    await rx.onArrival((_, at) => arrived?.(at));
    const started = now();
    const event = await s.app.services.events.publish(tenant.ctx, 'crm.deal.won', { i, deal: 'bench' });
    published.set(event.id, started);
    const at = await got;
    // the first ten warm the path up (queues, prepared statements, the JIT)
    if (i >= 10) times.push(at - started);
  }
  await rx.onArrival(undefined);
  await rx.arrivals();
  // where it went: publish → the dispatch's delivery row (the bus), and that row → the receiver
  const rows = await s.app.database.db
    .selectFrom('core.webhook_deliveries')
    .select(['event_id', 'created_at'])
    .where('tenant_id', '=', tenant.id)
    .execute();
  const bus = rows
    .map((r) => r.created_at.getTime() - (published.get(r.event_id) ?? Number.NaN))
    .filter(Number.isFinite)
    .sort((a, b) => a - b);
  return { times: times.sort((a, b) => a - b), bus };
}

/** Scenarios 2 and 3: EVENTS events, 4 publishers at once, to 100 endpoints (and maybe a slow one). */
async function flood(s: Opened, rx: Receiver, withSlow: boolean) {
  const fast = Array.from({ length: ENDPOINTS }, (_, i) => `/fast/${i}`);
  const tenant = await s.tenantWith(withSlow ? [...fast, '/slow/0'] : fast);
  await rx.arrivals();
  const before = await queryCount(s.app);
  const published = new Map<string, number>();
  const started = now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < EVENTS) {
        const i = next++;
        const at = now();
        const event = await s.app.services.events.publish(tenant.ctx, 'crm.deal.won', { i, deal: 'bench' });
        published.set(event.id, at);
      }
    }),
  );
  const publishedAt = now();
  await rx.waitFor('fast', EVENTS * ENDPOINTS, 600_000);
  const arrivals = await rx.arrivals();
  const fastArrivals = arrivals.filter((a) => a[0].startsWith('/fast/'));
  const last = Math.max(...fastArrivals.map((a) => a[2]));
  const queries = (await queryCount(s.app)) - before;
  const dispatched = await s.app.database.db
    .selectFrom('core.webhook_deliveries')
    .select((eb) => eb.fn.max('created_at').as('at'))
    .where('tenant_id', '=', tenant.id)
    .executeTakeFirstOrThrow();
  console.log(
    `  ${withSlow ? 'with slow: ' : ''}published in ${f1((publishedAt - started) / 1000)} s, last delivery row at ${f1((new Date(dispatched.at as Date).getTime() - started) / 1000)} s, last arrival at ${f1((last - started) / 1000)} s`,
  );
  const latencies = fastArrivals.map((a) => a[2] - published.get(a[1])!).sort((a, b) => a - b);
  let slowDone = Number.NaN;
  let slowGot = arrivals.filter((a) => a[0].startsWith('/slow/')).length;
  if (withSlow) {
    // the slow endpoint gets every delivery too, at its own pace
    await rx.waitFor('slow', EVENTS - slowGot, 300_000).catch(() => {});
    const rest = await rx.arrivals();
    slowGot += rest.filter((a) => a[0].startsWith('/slow/')).length;
    slowDone = (Math.max(...rest.map((a) => a[2]), last) - started) / 1000;
  }
  return {
    rate: fastArrivals.length / ((last - started) / 1000),
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    queriesPerDelivery: queries / (EVENTS * ENDPOINTS),
    slowGot,
    slowDone,
  };
}

const f1 = (v: number) => v.toFixed(1);

export async function webhooks(): Promise<void> {
  const rx = await startReceiver();
  const latencyRows: (string | number)[][] = [];
  const rateRows: (string | number)[][] = [];
  try {
    for (const setup of SETUPS) {
      const s = await openSetup(setup, rx);
      try {
        const body = sampleBody(crypto.randomUUID());
        const lat = await idleLatency(s, rx);
        const refLat = await referenceLatency(rx, pooledPost, body);
        const refFreshLat = await referenceLatency(rx, freshPost, body);
        await rx.arrivals();
        latencyRows.push([
          setup.label,
          f1(percentile(lat.times, 50)),
          f1(percentile(lat.times, 95)),
          `${f1(percentile(lat.bus, 50))} / ${f1(percentile(lat.bus, 95))}`,
          `${f1(percentile(refLat, 50))} / ${f1(percentile(refLat, 95))}`,
          `${f1(percentile(refFreshLat, 50))} / ${f1(percentile(refFreshLat, 95))}`,
        ]);
        console.log(latencyRows.at(-1)?.join(' | '));
        const plain = await flood(s, rx, false);
        const slow = await flood(s, rx, true);
        const ref = await referenceRate(rx, pooledPost, body, EVENTS * ENDPOINTS);
        const refFresh = await referenceRate(rx, freshPost, body, EVENTS * ENDPOINTS);
        await rx.arrivals();
        rateRows.push([
          setup.label,
          Math.round(plain.rate),
          `${Math.round(ref)} / ${Math.round(refFresh)}`,
          `${(plain.rate / ref).toFixed(2)} / ${(plain.rate / refFresh).toFixed(2)}`,
          `${Math.round(plain.p50)} / ${Math.round(plain.p95)}`,
          f1(plain.queriesPerDelivery),
          Math.round(slow.rate),
          `${Math.round(slow.p50)} / ${Math.round(slow.p95)}`,
          `${(slow.rate / plain.rate).toFixed(2)} / ${(slow.p95 / plain.p95).toFixed(2)}`,
          `${slow.slowGot}/${EVENTS} in ${f1(slow.slowDone)} s`,
        ]);
        console.log(rateRows.at(-1)?.join(' | '));
      } finally {
        await s.close();
      }
    }
  } finally {
    rx.close();
  }
  await record(
    'webhooks',
    `## Webhooks (\`bench/webhooks.ts\`)\n\n${stamp()}\n\n` +
      `Through the real app (bus publish → \`webhooks.dispatch\` → a \`webhooks.deliver\` job per endpoint → signed POST) ` +
      `to a local receiver in a child process. Reference, same run, same receiver: signed POSTs (HMAC included, same body size) ` +
      `straight from the app's process, with undici's keep-alive pool / with a fresh connection each (as the outbound guard does).\n\n` +
      `Idle: ${SAMPLES} single events one at a time (after 10 warm-up), publish → the receiver sees the first attempt; ` +
      `"bus" is publish → the dispatch's delivery row.\n\n` +
      table(
        'setup|event→attempt P50 ms|P95 ms|of which bus P50 / P95|ref POST P50 / P95|ref fresh conn P50 / P95'.split(
          '|',
        ),
        latencyRows,
      ) +
      `\n\nFlood: ${EVENTS} events (4 publishers at once) to ${ENDPOINTS} endpoints on one tenant = ${EVENTS * ENDPOINTS} deliveries, ` +
      `first publish → last delivery at the receiver; the reference runs as many POSTs ${WEBHOOK_WORKER_CONCURRENCY} at once (the worker's concurrency). ` +
      `With slow: the same plus one endpoint that answers after ${SLOW_MS / 1000} s (timeout 15 s); the fast endpoints' figures, and when the slow one had all its deliveries. ` +
      `Latency is event → delivery for every fast delivery; queries counted by the app's \`db_query_duration_seconds\`.\n\n` +
      table(
        'setup|deliveries/s|ref pooled / fresh /s|ratio pooled / fresh|P50 / P95 ms|queries/delivery|with slow: deliveries/s|P50 / P95 ms|ratio rate / P95|slow endpoint'.split(
          '|',
        ),
        rateRows,
      ),
  );
}

if (process.env[RECEIVER]) runReceiver();
