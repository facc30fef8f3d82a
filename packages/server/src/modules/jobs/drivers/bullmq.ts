import { DelayedError, type Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { PlexicaError } from '../../../infra/errors.js';
import type { QueueDriver } from './queue-driver.js';

export interface BullMqDriverOptions {
  redisUrl: string;
  /** Key prefix of every queue (BullMQ's `prefix`). */
  prefix: string;
  logger: Logger;
  leaseSeconds: number;
  retryDelaySeconds: number;
}

interface Payload {
  jobId: string;
  tenantId: string;
}

/** How long a job of a tenant at its limit steps aside before it is looked at again. */
const FAIRNESS_DELAY_MS = 250;

/**
 * Jobs on Redis with BullMQ. BullMQ cannot join a database transaction, so
 * the service dispatches after its commit (and sweeps what a crash left).
 * BullMQ's open-source edition has no groups: per-tenant fairness is a Redis
 * counter per tenant and queue, and a job whose tenant is at its limit is moved
 * back to the delayed set for a moment, leaving the slot to other tenants.
 */
export function createBullMqDriver(options: BullMqDriverOptions): QueueDriver {
  const { logger } = options;
  // workers block on their own connection; BullMQ wants maxRetriesPerRequest null there
  const connection = new Redis(options.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true });
  connection.on('error', (err) => logger.warn({ err: err.message }, 'job queue redis connection error'));
  const counters = new Redis(options.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
  counters.on('error', (err) => logger.warn({ err: err.message }, 'job counter redis connection error'));
  const queues = new Map<string, Queue<Payload>>();
  const workers: Worker<Payload>[] = [];
  // every worker of every process shares these (BullMQ requires it)
  const lockDuration = options.leaseSeconds * 1000;

  const queueFor = (name: string) => {
    let queue = queues.get(name);
    if (!queue) {
      queue = new Queue<Payload>(name, { connection, prefix: options.prefix });
      queues.set(name, queue);
    }
    return queue;
  };
  const unavailable = (err: unknown): never => {
    throw new PlexicaError('PLX_JOBS_UNAVAILABLE', {
      detail: 'the job engine (BullMQ on Redis) failed',
      cause: err,
    });
  };

  return {
    async start() {
      await Promise.all([connection.connect(), counters.connect()]).catch(unavailable);
    },
    async ensureQueue(name) {
      queueFor(name);
    },
    async send(name, deliveries) {
      if (deliveries.length === 0) return;
      await queueFor(name)
        .addBulk(
          deliveries.map((d) => ({
            name,
            data: { jobId: d.jobId, tenantId: d.tenantId },
            opts: {
              // our delivery id: adding it twice (a sweep after a crash) is a no-op in BullMQ
              jobId: d.id,
              // BullMQ: lower number = higher priority; ours: higher runs first
              ...(d.priority !== 0 && { priority: Math.max(1, 101 - d.priority) }),
              delay: Math.max(0, d.runAt.getTime() - Date.now()),
              attempts: d.retryLimit + 1,
              backoff: {
                type: 'exponential',
                delay: (d.retryDelaySeconds ?? options.retryDelaySeconds) * 1000,
                jitter: 0.5,
              },
              removeOnComplete: { age: 86_400, count: 10_000 },
              removeOnFail: { age: 7 * 86_400 },
            },
          })),
        )
        .catch(unavailable);
    },
    async work(name, { concurrency, tenantConcurrency }, handle) {
      const worker = new Worker<Payload>(
        name,
        async (job: Job<Payload>, token?: string, signal?: AbortSignal) => {
          const key = `tenant:${job.data.tenantId}:jobs:${name}:running`;
          // one round trip; the expiry cleans up after a worker that died holding a slot
          const replies = await counters
            .multi()
            .incr(key)
            .pexpire(key, lockDuration * 2)
            .exec();
          const [error, running] = replies?.[0] ?? [new Error('the fairness counter did not answer')];
          if (error) throw error;
          if ((running as number) > tenantConcurrency) {
            await counters.decr(key);
            await job.moveToDelayed(Date.now() + FAIRNESS_DELAY_MS, token);
            throw new DelayedError();
          }
          try {
            await handle({
              jobId: job.data.jobId,
              deliveryId: job.id!,
              signal: signal ?? new AbortController().signal,
            });
          } finally {
            await counters.decr(key);
          }
        },
        {
          connection,
          prefix: options.prefix,
          concurrency,
          lockDuration,
          stalledInterval: lockDuration / 2,
          maxStalledCount: 5,
        },
      );
      worker.on('error', (err) => logger.warn({ err: err.message, queue: name }, 'job worker error'));
      workers.push(worker);
    },
    wake() {
      // BullMQ workers block on Redis and wake on their own
    },
    async cancel(name, deliveryId) {
      const job = await queueFor(name).getJob(deliveryId).catch(unavailable);
      try {
        await job?.remove();
      } catch (err) {
        // an active (locked) job cannot be removed: the worker sees the cancelled row instead.
        // Anything else (Redis down) is the caller's to hear about.
        if (job && (await job.isActive().catch(() => false))) return;
        unavailable(err);
      }
    },
    async stop(timeoutMs) {
      const closing = Promise.all(workers.map((w) => w.close()));
      const timer = new Promise((resolve) => setTimeout(resolve, timeoutMs).unref());
      await Promise.race([closing, timer]);
      await Promise.all(workers.map((w) => w.close(true)));
      await Promise.all([...queues.values()].map((q) => q.close()));
      connection.disconnect();
      counters.disconnect();
    },
  };
}
