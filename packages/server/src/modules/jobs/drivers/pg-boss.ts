import { randomUUID } from 'node:crypto';
import { CompiledQuery, type Kysely } from 'kysely';
import { type Job, PgBoss } from 'pg-boss';
import type { Logger } from 'pino';
import { createBatcher } from '../../../infra/batcher.js';
import type { Executor } from '../../../infra/database/index.js';
import { PlexicaError } from '../../../infra/errors.js';
import type { JobsTables } from '../tables.js';
import type { Delivery, QueueDriver, Received } from './queue-driver.js';

/** pg-boss's database interface over a Kysely handle (the pool, or a transaction). */
const executor = (db: Kysely<JobsTables>) => ({
  async executeSql(text: string, values: unknown[] = []) {
    const result = await db.executeQuery(CompiledQuery.raw(text, values));
    return { rows: result.rows as unknown[] };
  },
});

export interface PgBossDriverOptions {
  db: Kysely<JobsTables>;
  embedded: boolean;
  logger: Logger;
  /** A worker that stops heartbeating for this long loses the delivery to another worker. */
  leaseSeconds: number;
  /** Seconds before the first retry of a failed delivery; doubles each time, with jitter. */
  retryDelaySeconds: number;
  pollingIntervalSeconds: number;
}

/** What pg-boss fences a settle with: the attempt this worker fetched. */
interface JobAttempt {
  id: string;
  retryCount: number;
}
type Fetched = Job<{ jobId: string }>;

/** The most completions settled in one statement. */
const SETTLE_BATCH = 500;

interface QueueWorker {
  fill(): void;
  /** @returns how many deliveries were still running at the timeout (given back) */
  stop(timeoutMs: number): Promise<number>;
}

/**
 * Jobs on PostgreSQL (or the embedded PGlite) with pg-boss, in schema
 * `pgboss` of the same database, over Plexica's own connection pool: in
 * embedded mode that pool is the one connection PGlite has, and a delivery
 * sent inside a transaction commits with it.
 *
 * Workers use pg-boss's fetch/complete/fail/touch rather than `boss.work`:
 * `work` runs a fetched batch as one unit, so either each fetch takes one job
 * (a round trip per job) or a slow job holds its whole batch's slots. Here a
 * fetch takes as many jobs as there are free slots, each job frees its slot
 * when it ends, and completions that end together settle in one statement.
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
  const workers = new Map<string, QueueWorker>();
  const ensured = new Set<string>();

  const unavailable = (err: unknown): never => {
    throw new PlexicaError('PLX_JOBS_UNAVAILABLE', { detail: 'the job engine (pg-boss) failed', cause: err });
  };

  const createWorker = (
    queue: string,
    { concurrency, tenantConcurrency }: { concurrency: number; tenantConcurrency: number },
    handle: (received: Received) => Promise<void>,
  ): QueueWorker => {
    /** Deliveries this worker holds a claim on: running, or ended and not yet settled. */
    const held = new Map<string, { attempt: JobAttempt; controller: AbortController }>();
    let running = 0;
    let fetching = false;
    let fetchAgain = false;
    let stopping = false;
    let idle: (() => void) | undefined;
    const checkIdle = () => {
      if (running === 0 && held.size === 0 && !fetching) idle?.();
    };

    const complete = createBatcher(
      async (attempts: JobAttempt[]) => {
        await boss.complete(queue, attempts);
        return attempts.map(() => undefined);
      },
      { maxBatch: SETTLE_BATCH },
    );

    const runOne = async (job: Fetched) => {
      const attempt = { id: job.id, retryCount: job.retryCount };
      const controller = new AbortController();
      held.set(job.id, { attempt, controller });
      let outcome: 'completed' | Error = 'completed';
      try {
        await handle({ jobId: job.data.jobId, deliveryId: job.id, signal: controller.signal });
      } catch (err) {
        outcome = err instanceof Error ? err : new Error(String(err));
      }
      try {
        if (outcome === 'completed') await complete(attempt);
        // pg-boss retries it after its backoff, or fails it for good past its retry limit
        else await boss.fail(queue, attempt, { message: outcome.message });
      } catch (err) {
        // the claim lapses with the lease and the job is delivered again; the row says what happened
        logger.error({ err, queue, deliveryId: job.id }, 'could not settle a delivery');
      } finally {
        // only now: pg-boss counts a tenant's jobs against its group limit until they are settled
        running--;
        held.delete(job.id);
        fillSoon();
        checkIdle();
      }
    };

    const fill = () => {
      if (stopping) return;
      if (fetching) {
        fetchAgain = true;
        return;
      }
      const free = concurrency - running;
      if (free <= 0) return;
      fetching = true;
      fetchAgain = false;
      running += free; // reserved while the fetch runs
      boss
        .fetch<{ jobId: string }>(queue, { batchSize: free, groupConcurrency: tenantConcurrency })
        .catch((err: unknown) => {
          logger.error({ err, queue }, 'job fetch failed; the next poll tries again');
          return [] as Fetched[];
        })
        .then((jobs) => {
          running -= free - jobs.length;
          fetching = false;
          for (const job of jobs) void runOne(job);
          checkIdle();
          // a full batch says more is waiting; a wake during the fetch may have found more
          if (fetchAgain || (jobs.length === free && jobs.length > 0)) fill();
        });
    };

    // jobs whose outcomes were written in one statement end in the same tick: one fetch for all their slots
    let fillQueued = false;
    const fillSoon = () => {
      if (fillQueued) return;
      fillQueued = true;
      setImmediate(() => {
        fillQueued = false;
        fill();
      });
    };

    const poll = setInterval(fill, options.pollingIntervalSeconds * 1000);
    poll.unref();
    // the lease: a crashed worker stops touching its claims and the supervisor hands them on
    const heartbeat = setInterval(
      () => {
        const attempts = [...held.values()].map((h) => h.attempt);
        if (attempts.length === 0) return;
        boss.touch(queue, attempts).then(
          (touched) => {
            // pg-boss returns the ids it refreshed (its typings leave them out)
            const { settled } = touched as { settled?: string[] };
            if (!settled) return;
            const refreshed = new Set(settled);
            for (const [id, h] of held)
              if (!refreshed.has(id)) h.controller.abort(new Error('the lease on this delivery was lost'));
          },
          (err: unknown) => logger.warn({ err, queue }, 'job heartbeat failed'),
        );
      },
      Math.max(1000, (options.leaseSeconds * 1000) / 2),
    );
    heartbeat.unref();
    fill();

    return {
      fill,
      async stop(timeoutMs) {
        stopping = true;
        clearInterval(poll);
        const drained = new Promise<void>((resolve) => {
          idle = resolve;
          checkIdle();
        });
        const timer = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref());
        await Promise.race([drained, timer]);
        // what is still running is given back: its handler sees the abort, the delivery is retried
        const cut = held.size;
        for (const h of held.values()) h.controller.abort(new Error('the worker is shutting down'));
        await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
        clearInterval(heartbeat);
        return cut;
      },
    };
  };

  /** One round trip for all `deliveries`; in `trx` when given (they commit with it). */
  const insert = async (queue: string, deliveries: Delivery[], trx?: Executor) => {
    if (deliveries.length === 0) return;
    await boss
      .insert(
        queue,
        deliveries.map((d) => ({
          id: d.id,
          data: { jobId: d.jobId },
          priority: d.priority,
          startAfter: d.runAt,
          retryLimit: d.retryLimit,
          ...(d.retryDelaySeconds && { retryDelay: d.retryDelaySeconds, retryBackoff: true }),
          group: { id: d.tenantId },
        })),
        trx && { db: executor(trx) },
      )
      .catch(unavailable);
  };

  return {
    async start() {
      await boss.start();
    },
    async ensureQueue(queue, { timeoutMs }) {
      if (ensured.has(queue)) return;
      await boss.createQueue(queue, {
        retryDelay: options.retryDelaySeconds,
        retryBackoff: true,
        retryDelayMax: 3600,
        heartbeatSeconds: options.leaseSeconds,
        // pg-boss fails a delivery active for longer than this; our own timeout fires first
        expireInSeconds: Math.ceil(timeoutMs / 1000) + 60,
      });
      // pg-boss looks a queue up through its own pool the first time it sends to it; inside
      // our transaction on the embedded database (one connection) that lookup would wait for
      // the transaction forever. Settling a job that does not exist caches the queue now.
      await boss.complete(queue, randomUUID());
      ensured.add(queue);
    },
    send: (queue, deliveries) => insert(queue, deliveries),
    sendIn: (trx, queue, deliveries) => insert(queue, deliveries, trx),
    async work(queue, concurrency, handle) {
      workers.set(queue, createWorker(queue, concurrency, handle));
    },
    async cancel(queue, deliveryId) {
      await boss.cancel(queue, deliveryId).catch(unavailable);
    },
    async stopWorkers(timeoutMs) {
      const stopping = [...workers.values()].map((w) => w.stop(timeoutMs));
      workers.clear();
      return (await Promise.all(stopping)).reduce((sum, n) => sum + n, 0);
    },
    async stop(timeoutMs) {
      await this.stopWorkers(timeoutMs);
      await boss.stop({ graceful: true, timeout: 1000, close: false });
    },
    wake(queue) {
      workers.get(queue)?.fill();
    },
  };
}
