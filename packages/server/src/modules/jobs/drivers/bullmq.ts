import { DelayedError, type Job, Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { PlexicaError } from '../../../infra/errors.js';
import type { QueueDriver } from './queue-driver.js';
import { createTenantSlots } from './tenant-slots.js';

export interface BullMqDriverOptions {
  redisUrl: string;
  /** Key prefix of every queue (BullMQ's `prefix`). */
  prefix: string;
  logger: Logger;
  leaseSeconds: number;
  retryDelaySeconds: number;
  /** Longest wait for a reply on the non-blocking connections (sends, tenant slots). */
  commandTimeoutMs: number;
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
 * BullMQ's open-source edition has no groups: per-tenant fairness is a set of
 * slot leases per tenant and queue (tenant-slots.ts), and a job whose tenant is
 * at its limit is moved back to the delayed set for a moment, leaving the
 * worker to other tenants.
 */
export function createBullMqDriver(options: BullMqDriverOptions): QueueDriver {
  const { logger } = options;
  // workers block on their own connection; BullMQ wants maxRetriesPerRequest null there
  const connection = new Redis(options.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true });
  connection.on('error', (err) => logger.warn({ err: err.message }, 'job queue redis connection error'));
  // sends and slots fail fast while Redis is down (no offline queue) or frozen (commandTimeout):
  // an enqueue answers 503 instead of waiting, a worker retries the delivery later
  const fastFailing = {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    commandTimeout: options.commandTimeoutMs,
  };
  const producer = new Redis(options.redisUrl, fastFailing);
  producer.on('error', (err) => logger.warn({ err: err.message }, 'job producer redis connection error'));
  const counters = new Redis(options.redisUrl, fastFailing);
  counters.on('error', (err) => logger.warn({ err: err.message }, 'job slot redis connection error'));
  const slots = createTenantSlots(counters);
  const queues = new Map<string, Queue<Payload>>();
  const workers: Worker<Payload>[] = [];
  /** Handlers running in this process, by delivery: aborted when a shutdown runs out of time. */
  const running = new Map<string, AbortController>();
  let stoppedWorkers: Promise<number> | undefined;
  // every worker of every process shares these (BullMQ requires it)
  const lockDuration = options.leaseSeconds * 1000;

  const queueFor = (name: string) => {
    let queue = queues.get(name);
    if (!queue) {
      queue = new Queue<Payload>(name, { connection: producer, prefix: options.prefix });
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
      await Promise.all([connection.connect(), producer.connect(), counters.connect()]).catch(unavailable);
    },
    available: () => producer.status === 'ready',
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
          const key = `tenant:${job.data.tenantId}:jobs:${name}:slots`;
          const member = job.id!;
          const taken = await slots.take(key, member, tenantConcurrency, lockDuration);
          if (!taken) {
            await job.moveToDelayed(Date.now() + FAIRNESS_DELAY_MS, token);
            throw new DelayedError();
          }
          // the slot is a lease like the job's lock: renewed while the handler runs, so a
          // worker that dies (kill -9) frees it within PLEXICA_JOBS_LEASE_SECONDS
          const heartbeat = setInterval(() => {
            slots
              .renew(key, member, lockDuration)
              .catch((err: unknown) =>
                logger.warn({ err: (err as Error).message, queue: name }, 'could not renew a tenant slot'),
              );
          }, lockDuration / 3);
          try {
            const givenBack = new AbortController();
            running.set(member, givenBack);
            await handle({
              jobId: job.data.jobId,
              deliveryId: member,
              signal: signal ? AbortSignal.any([signal, givenBack.signal]) : givenBack.signal,
            });
          } finally {
            running.delete(member);
            clearInterval(heartbeat);
            // a failed release is harmless: the lease runs out on its own
            await slots
              .release(key, member)
              .catch((err: unknown) =>
                logger.warn({ err: (err as Error).message, queue: name }, 'could not release a tenant slot'),
              );
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
    stopWorkers(timeoutMs) {
      stoppedWorkers ??= (async () => {
        // close() stops fetching at once and resolves when the running handlers end
        const closing = Promise.all(workers.map((w) => w.close()));
        const timer = new Promise((resolve) => setTimeout(resolve, timeoutMs).unref());
        await Promise.race([closing, timer]);
        // still running: given back (the runner writes them pending, BullMQ delivers them again)
        const cut = running.size;
        for (const controller of running.values()) controller.abort(new Error('the worker is shutting down'));
        await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
        await Promise.all(workers.map((w) => w.close(true)));
        return cut;
      })();
      return stoppedWorkers;
    },
    async stop(timeoutMs) {
      await this.stopWorkers(timeoutMs);
      await Promise.all([...queues.values()].map((q) => q.close()));
      connection.disconnect();
      producer.disconnect();
      counters.disconnect();
    },
  };
}
