import { randomUUID } from 'node:crypto';
import { CompiledQuery, type Kysely } from 'kysely';
import { PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import type { CoreDatabase } from '../../infra/database/index.js';
import { PlexicaError } from '../../infra/errors.js';
import type { QueueDriver } from './driver.js';

/** pg-boss's database interface over a Kysely handle (the pool, or a transaction). */
const executor = (db: Kysely<CoreDatabase>) => ({
  async executeSql(text: string, values: unknown[] = []) {
    const result = await db.executeQuery(CompiledQuery.raw(text, values));
    return { rows: result.rows as unknown[] };
  },
});

export interface PgBossDriverOptions {
  db: Kysely<CoreDatabase>;
  embedded: boolean;
  logger: Logger;
  /** A worker that stops heartbeating for this long loses the delivery to another worker. */
  leaseSeconds: number;
  /** Seconds before the first retry of a failed delivery; doubles each time, with jitter. */
  retryDelaySeconds: number;
  pollingIntervalSeconds: number;
}

/**
 * Jobs on PostgreSQL (or the embedded PGlite) with pg-boss, in schema
 * `pgboss` of the same database, over Plexica's own connection pool: in
 * embedded mode that pool is the one connection PGlite has, and a delivery
 * sent inside a transaction commits with it.
 */
export function createPgBossDriver(options: PgBossDriverOptions): QueueDriver {
  const { db, logger } = options;
  const boss = new PgBoss({
    db: executor(db),
    schema: 'pgboss',
    backend: options.embedded ? 'pglite' : 'postgres',
    supervise: true,
    // lost leases are found by the monitor pass: look twice per lease
    superviseIntervalSeconds: Math.max(1, Math.min(60, Math.floor(options.leaseSeconds / 2))),
    monitorIntervalSeconds: Math.max(1, Math.min(60, Math.floor(options.leaseSeconds / 2))),
  });
  boss.on('error', (err: unknown) => logger.error({ err }, 'job engine error'));
  const workers = new Map<string, string[]>();
  const ensured = new Set<string>();

  const unavailable = (err: unknown): never => {
    throw new PlexicaError('PLX_JOBS_UNAVAILABLE', { detail: 'the job engine (pg-boss) failed', cause: err });
  };

  return {
    kind: 'postgres',
    transactional: true,
    async start() {
      await boss.start();
    },
    async ensureQueue(queue) {
      if (ensured.has(queue)) return;
      await boss.createQueue(queue, {
        retryDelay: options.retryDelaySeconds,
        retryBackoff: true,
        retryDelayMax: 3600,
        heartbeatSeconds: options.leaseSeconds,
      });
      // pg-boss looks a queue up through its own pool the first time it sends to it; inside
      // our transaction on the embedded database (one connection) that lookup would wait for
      // the transaction forever. Settling a job that does not exist caches the queue now.
      await boss.complete(queue, randomUUID());
      ensured.add(queue);
    },
    async send(queue, delivery, trx) {
      const id = await boss
        .send(
          queue,
          { jobId: delivery.jobId },
          {
            priority: delivery.priority,
            startAfter: delivery.runAt,
            retryLimit: delivery.retryLimit,
            ...(delivery.retryDelaySeconds && { retryDelay: delivery.retryDelaySeconds, retryBackoff: true }),
            group: { id: delivery.tenantId },
            ...(trx && { db: executor(trx) }),
          },
        )
        .catch(unavailable);
      if (!id)
        throw new PlexicaError('PLX_JOBS_UNAVAILABLE', { detail: `pg-boss refused a delivery on ${queue}` });
      return id;
    },
    async work(queue, { concurrency, tenantConcurrency }, handle) {
      let id = '';
      id = await boss.work<{ jobId: string }>(
        queue,
        {
          // one job per fetch, so a slow job never holds back the rest of a batch
          batchSize: 1,
          localConcurrency: concurrency,
          groupConcurrency: tenantConcurrency,
          pollingIntervalSeconds: options.pollingIntervalSeconds,
        },
        async ([job]) => {
          try {
            if (job)
              await handle({ jobId: job.data.jobId, redeliveries: job.retryCount, signal: job.signal });
          } finally {
            // pg-boss sleeps a polling interval after every fetch of batchSize 1; while there is
            // work, look again at once instead (an empty fetch then sleeps as usual)
            if (job) setImmediate(() => boss.notifyWorker(id));
          }
        },
      );
      workers.set(queue, [id]);
    },
    async cancel(queue, deliveryId) {
      await boss.cancel(queue, deliveryId).catch(unavailable);
    },
    async stop(timeoutMs) {
      await boss.stop({ graceful: true, timeout: Math.max(timeoutMs, 1000), close: false });
    },
    wake(queue) {
      for (const worker of workers.get(queue) ?? []) boss.notifyWorker(worker);
    },
  };
}
