import type { Executor } from '../../../infra/database/index.js';

/** One delivery of a job to a worker; the job itself lives in `core.jobs`. */
export interface Delivery {
  /** Made by the service (a UUID) and stored in `core.jobs.delivery_id`: the engine's id for it. */
  id: string;
  jobId: string;
  tenantId: string;
  priority: number;
  runAt: Date;
  /** Engine retries allowed after a failed or abandoned delivery. */
  retryLimit: number;
  /** First retry delay of this job's type (doubling, with jitter); undefined = the engine default. */
  retryDelaySeconds?: number;
}

export interface Received {
  jobId: string;
  /** The delivery's id: a job runs only for the delivery its row names (or before it names one). */
  deliveryId: string;
  /** Aborted when the engine gives up on this delivery (shutdown, lost lease). */
  signal: AbortSignal;
}

/**
 * What the jobs module needs from a queue engine: durable, at-least-once
 * delivery with leases, delayed delivery, priority, per-tenant fairness, and
 * retry with exponential backoff and jitter when a handler throws.
 */
export interface QueueDriver {
  start(): Promise<void>;
  /** Creates the queue of a job type; idempotent. `timeoutMs`: the longest a delivery may run. */
  ensureQueue(queue: string, options: { timeoutMs: number }): Promise<void>;
  /** Hands deliveries to the engine, all in one round trip where the engine allows. */
  send(queue: string, deliveries: Delivery[]): Promise<void>;
  /**
   * Optional capability: `send` inside the caller's database transaction, so the
   * deliveries exist only if it commits (an engine in the same database). The
   * service checks for it once: without it, a tenant's jobs wait in `core.jobs`
   * and reach the engine through the dispatch window after the commit (window.ts).
   */
  sendIn?(trx: Executor, queue: string, deliveries: Delivery[]): Promise<void>;
  /**
   * Runs `handle` for each delivery, at most `concurrency` at a time in this
   * process and `tenantConcurrency` per tenant across all workers. A rejection
   * asks the engine to retry later; resolving settles the delivery.
   */
  work(
    queue: string,
    options: { concurrency: number; tenantConcurrency: number },
    handle: (received: Received) => Promise<void>,
  ): Promise<void>;
  /**
   * Optional capability: whether the engine can take deliveries right now (its
   * connection is up). An engine outside our database (BullMQ on Redis) has
   * it, and the service refuses new jobs with 503 PLX_JOBS_UNAVAILABLE while it
   * says no; without it (pg-boss) the database's own availability decides.
   */
  available?(): boolean;
  /** Wakes this process's workers of `queue` now instead of at their next poll. */
  wake(queue: string): void;
  /** Withdraws a delivery that has not started; a started one is left to the worker. */
  cancel(queue: string, deliveryId: string): Promise<void>;
  /**
   * Stops fetching at once; waits up to `timeoutMs` for running handlers, then
   * gives their deliveries back. Idempotent. @returns how many were given back
   */
  stopWorkers(timeoutMs: number): Promise<number>;
  /** Stops the workers (as `stopWorkers`) and closes the engine. */
  stop(timeoutMs: number): Promise<void>;
}
