import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { CompiledQuery, sql } from 'kysely';
import { PgBoss } from 'pg-boss';
import { type RequestContext, systemContext, toTenantRef } from '../packages/server/src/context.js';
import { ENGINES, percentile, record, runLoad, stamp, startApp, table } from './lib.js';

const JOBS = Number(process.env.PLEXICA_BENCH_JOBS ?? 3000);
const FLOOD = Number(process.env.PLEXICA_BENCH_FLOOD ?? 100_000);
const CONCURRENCY = 20;
const REDIS_URL = process.env.PLEXICA_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

const waitUntil = async (check: () => Promise<boolean>, timeoutMs = 600_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

/**
 * Enqueue latency over HTTP, no-op throughput against raw pg-boss on the same
 * database in the same run, and enqueue-to-start latency when idle.
 */
export async function jobs(): Promise<void> {
  const rows: (string | number)[][] = [];
  const setups = [
    ...ENGINES.map((engine) => ({ engine, label: `pg-boss on ${engine}`, redis: false })),
    { engine: 'postgres' as const, label: 'BullMQ on Redis', redis: true },
  ];
  for (const { engine, label, redis } of setups) {
    const { app, close } = await startApp(engine, {
      databasePoolSize: 20,
      jobsPollIntervalSeconds: 1,
      ...(redis && { jobsDriver: 'redis', redisUrl: REDIS_URL, jobsRedisPrefix: `plx-bench-${Date.now()}` }),
    });
    try {
      const service = app.services.jobs;
      let done = 0;
      // when each probe started: BullMQ may start one before `enqueue` has returned its id
      const startedAt: number[] = [];
      const started: number[] = [];
      service.define({
        type: 'bench.noop',
        concurrency: CONCURRENCY,
        tenantConcurrency: CONCURRENCY,
        handler: async () => {
          done++;
          return null;
        },
      });
      service.define({
        type: 'bench.probe',
        handler: async () => {
          startedAt.push(performance.now());
          return null;
        },
      });
      // fairness: tenant A floods, tenant B enqueues one job; 2 of 4 slots per tenant
      let floodDone = 0;
      let otherStarted = 0;
      service.define({
        type: 'bench.fair',
        concurrency: 4,
        tenantConcurrency: 2,
        handler: async (run) => {
          if (run.tenant.slug.endsWith('-b')) otherStarted = performance.now();
          else {
            await new Promise((resolve) => setTimeout(resolve, 5));
            floodDone++;
          }
          return null;
        },
      });
      const url = await app.start();
      if (!url) throw new Error('app did not listen');
      const tenant = await app.services.tenants.create({ slug: `bench-jobs-${engine}`, name: 'Bench' });
      const ctx: RequestContext = { traceId: 'bench', principal: null, tenant: toTenantRef(tenant) };
      const admin = await app.services.sessions.login(
        systemContext('bench'),
        { email: 'bench@plexica.test', password: 'bench-admin-password' },
        {},
      );

      // 1. enqueue latency over HTTP (one client, then 10), delayed far out so workers stay idle
      const enqueueLoad = async (connections: number) =>
        runLoad({
          url,
          connections,
          durationSeconds: 4,
          headers: { authorization: `Bearer ${admin.accessToken}`, 'x-tenant-id': tenant.id },
          requests: [
            {
              method: 'POST',
              path: '/api/v1/jobs',
              body: '{"type":"bench.noop","runAt":"2099-01-01T00:00:00Z"}',
            },
          ],
        });
      for (const connections of [1, 10]) {
        const load = await enqueueLoad(connections);
        rows.push([
          label,
          `POST /jobs over HTTP, ${connections} conn`,
          Math.round(load.rps),
          `P50 ${load.p50} ms, P97.5 ${load.p97_5} ms`,
          '< 2 ms P95 (embedded)',
        ]);
      }

      // 2. enqueue-to-start when idle
      for (let i = 0; i < 50; i++) {
        const before = performance.now();
        await service.enqueue(ctx, { type: 'bench.probe' });
        await waitUntil(async () => startedAt.length > i, 10_000);
        started.push(startedAt[i]! - before);
      }
      const starts = [...started].sort((x, y) => x - y);
      rows.push([
        label,
        'enqueue → handler start, idle (50 jobs)',
        '—',
        `P50 ${percentile(starts, 50).toFixed(1)} ms, P95 ${percentile(starts, 95).toFixed(1)} ms`,
        '< 10 ms',
      ]);

      // 3. throughput of no-op jobs, ours: from the first enqueue to the last completion
      const ours0 = performance.now();
      for (let i = 0; i < JOBS; i += 500)
        await service.enqueueBulk(
          ctx,
          Array.from({ length: Math.min(500, JOBS - i) }, () => ({ type: 'bench.noop' })),
        );
      await waitUntil(async () => done >= JOBS);
      const oursMs = performance.now() - ours0;

      // the same on the raw library: same engine, same concurrency, no status table
      const rawPgBoss = async () => {
        const boss = new PgBoss({
          db: {
            executeSql: async (text: string, values: unknown[] = []) => ({
              rows: (await app.database.db.executeQuery(CompiledQuery.raw(text, values))).rows as unknown[],
            }),
          },
          schema: 'pgboss_raw',
          backend: engine === 'pglite' ? 'pglite' : 'postgres',
        });
        await boss.start();
        await boss.createQueue('raw');
        let rawDone = 0;
        // workers first, as ours run while jobs are enqueued; raw pg-boss set up for throughput
        // as its docs suggest: batches of CONCURRENCY, fetched again at once while they come back full
        await boss.work(
          'raw',
          { batchSize: CONCURRENCY, burstWhenBatchFull: true, pollingIntervalSeconds: 1 },
          async (batch) => {
            rawDone += batch.length;
          },
        );
        const raw0 = performance.now();
        for (let i = 0; i < JOBS; i += 500)
          await boss.insert(
            'raw',
            Array.from({ length: Math.min(500, JOBS - i) }, () => ({ data: {} })),
          );
        await waitUntil(async () => rawDone >= JOBS);
        const rawMs = performance.now() - raw0;
        await boss.stop({ graceful: true, close: false });
        return rawMs;
      };
      // withStatus: the processor writes the job's status to PostgreSQL at start and end, one
      // statement each, as a plain BullMQ app that keeps status in its database would
      const rawBullMq = async (withStatus: boolean) => {
        const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
        const queue = new Queue('raw', { connection, prefix: `plx-bench-raw-${Date.now()}` });
        const db = app.database.db;
        if (withStatus) {
          await sql`create table bench_status (id integer primary key, status text not null)`.execute(db);
          await sql`insert into bench_status select g, 'pending' from generate_series(0, ${JOBS}) g`.execute(
            db,
          );
        }
        let rawDone = 0;
        const worker = new Worker<{ n: number }>(
          'raw',
          async (job) => {
            if (withStatus)
              await sql`update bench_status set status = 'running' where id = ${job.data.n}`.execute(db);
            rawDone++;
            if (withStatus)
              await sql`update bench_status set status = 'completed' where id = ${job.data.n}`.execute(db);
          },
          { connection, prefix: queue.opts.prefix, concurrency: CONCURRENCY },
        );
        const raw0 = performance.now();
        for (let i = 0; i < JOBS; i += 500)
          await queue.addBulk(
            Array.from({ length: Math.min(500, JOBS - i) }, (_, k) => ({ name: 'raw', data: { n: i + k } })),
          );
        await waitUntil(async () => rawDone >= JOBS);
        const rawMs = performance.now() - raw0;
        await worker.close();
        await queue.obliterate({ force: true });
        await queue.close();
        connection.disconnect();
        if (withStatus) await sql`drop table bench_status`.execute(db);
        return rawMs;
      };
      const rawMs = redis ? await rawBullMq(false) : await rawPgBoss();
      const ours = JOBS / (oursMs / 1000);
      const rawRate = JOBS / (rawMs / 1000);
      rows.push([
        label,
        `${JOBS} no-op jobs, ${CONCURRENCY} concurrent`,
        Math.round(ours),
        `raw ${redis ? 'BullMQ' : 'pg-boss'} ${Math.round(rawRate)}/s → ratio ${(ours / rawRate).toFixed(2)}`,
        redis ? '≥ 0.8 of raw; ≥ 10,000/s' : '≥ 0.8 of raw; ≥ 5,000/s on PostgreSQL',
      ]);
      if (redis) {
        const statusRate = JOBS / ((await rawBullMq(true)) / 1000);
        rows.push([
          label,
          `${JOBS} no-op jobs, ${CONCURRENCY} concurrent`,
          Math.round(ours),
          `raw BullMQ + status written to PostgreSQL per job ${Math.round(statusRate)}/s → ratio ${(ours / statusRate).toFixed(2)}`,
          'same guarantees as ours',
        ]);
      }

      // 4. fairness: how long B's one job waits behind A's flood
      const floodTenant = await app.services.tenants.create({ slug: `bench-fair-${engine}-a`, name: 'A' });
      const otherTenant = await app.services.tenants.create({ slug: `bench-fair-${engine}-b`, name: 'B' });
      const ctxOf = (t: typeof tenant): RequestContext => ({
        traceId: 'bench',
        principal: null,
        tenant: toTenantRef(t),
      });
      const flood0 = performance.now();
      for (let i = 0; i < FLOOD; i += 1000)
        await service.enqueueBulk(
          ctxOf(floodTenant),
          Array.from({ length: Math.min(1000, FLOOD - i) }, () => ({ type: 'bench.fair' })),
        );
      const floodMs = performance.now() - flood0;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const other0 = performance.now();
      await service.enqueue(ctxOf(otherTenant), { type: 'bench.fair' });
      await waitUntil(async () => otherStarted > 0, 300_000);
      rows.push([
        label,
        `B's one job behind A's ${FLOOD.toLocaleString('en')} queued jobs (2 of 4 slots per tenant)`,
        '—',
        `B started after ${(otherStarted - other0).toFixed(1)} ms; A's flood enqueued in ${(floodMs / 1000).toFixed(1)} s, ${floodDone} of it done`,
        'not starved (ours: as when idle, < 10 ms)',
      ]);
    } finally {
      await close();
    }
  }
  const out = table(['engine', 'measure', 'per second', 'latency / reference', 'target'], rows);
  console.log(out);
  await record(
    'jobs',
    `## Jobs (\`bench/jobs.ts\`)\n\n${stamp()}\n\nEnqueue over HTTP with autocannon in a child process (jobs delayed far out, so workers stay idle); enqueue-to-start with one job at a time; throughput of ${JOBS} no-op jobs from the first enqueue (in bulks of 500) to the last completion with ${CONCURRENCY} concurrent handlers, against raw pg-boss draining the same number on the same database in batches of the same size (its fastest natural setup; ours fetches as many jobs as it has free slots, frees each slot when its job ends, and writes the status in \`core.jobs\` at start and end, batched across jobs that start or end together). On Redis the reference is raw BullMQ: a queue filled with \`addBulk\`, drained by one Worker of the same concurrency; and, since ours keeps every job's status in PostgreSQL, the same Worker writing the status (running, completed) to PostgreSQL with one statement each. Fairness: tenant A enqueues ${FLOOD.toLocaleString('en')} jobs of 5 ms (bulks of 1000), then, a second later, tenant B one job of the same type; the time is from B's enqueue to its handler's start.\n\n${out}\n`,
  );
}
