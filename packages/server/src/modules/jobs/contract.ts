import type { TSchema } from '@sinclair/typebox';
import type { RequestContext, TenantRef } from '../../context.js';
import type { Transaction } from '../../infra/database/transaction.js';
import type { JobFinished } from './runner.js';
import type { JobStatusName } from './tables.js';

/** What a handler gets: the job, its tenant, and a way to report progress. */
export interface JobRun<D = unknown> {
  id: string;
  type: string;
  data: D;
  /** 1 for the first try. */
  attempt: number;
  tenant: TenantRef;
  /** A system context in the job's tenant, with the trace id of the request that enqueued it. */
  ctx: RequestContext;
  /** Aborted on timeout, on cancel, and when the worker shuts down or loses the lease. */
  signal: AbortSignal;
  updateProgress(percent: number): Promise<void>;
}

export interface JobDefinition<D = unknown> {
  /** `module.action`, e.g. `email.send`: lowercase, digits, `.`, `_`, `-`. */
  type: string;
  handler(run: JobRun<D>): Promise<unknown>;
  /** Validates `data` at enqueue: a bad payload is a 400 naming the field, never a failed job. */
  schema?: TSchema;
  /** Tries before the job is dead (default 3). */
  maxAttempts?: number;
  /** The handler is aborted and the attempt fails after this long (default 5 min). */
  timeoutMs?: number;
  /** Handlers of this type running at once in one worker process (default 5). */
  concurrency?: number;
  /** Jobs of one tenant running at once across all workers (default 2): no tenant starves another. */
  tenantConcurrency?: number;
  /** First retry delay in seconds, doubling per attempt with jitter (default PLEXICA_JOBS_RETRY_DELAY). */
  retryDelaySeconds?: number;
  /**
   * Checks at enqueue that need I/O (a URL's host resolving to a public address,
   * say), after `schema`; throws the 4xx to answer. Not run by `enqueueIn`,
   * whose transaction may hold the only connection.
   */
  validate?(data: D): Promise<void>;
}

export interface JobStatus {
  id: string;
  type: string;
  status: JobStatusName;
  /** Failed for good after its last attempt (the dead-letter state); `retry` re-drives it. */
  dead: boolean;
  progress: number;
  attempts: number;
  maxAttempts: number;
  priority: number;
  lastError: string | null;
  data: unknown;
  result: unknown;
  traceId: string | null;
  idempotencyKey: string | null;
  runAt: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  updatedAt: string;
}

export interface EnqueueInput {
  type: string;
  data?: unknown;
  /** Not before this time (delayed job). */
  runAt?: Date | string;
  /** Higher runs first (default 0). */
  priority?: number;
  /** The same key in the same tenant returns the first job instead of a new one. */
  idempotencyKey?: string;
  maxAttempts?: number;
}

/** Seed 000 §7 `JobQueueService` (enqueue, cancel, getStatus; `schedule` comes with cron). */
export interface JobQueueService {
  /** Registers a job type; call before `start`. A type registered twice is an error. */
  define<D>(definition: JobDefinition<D>): void;
  enqueue(ctx: RequestContext, input: EnqueueInput): Promise<JobStatus>;
  /** All or nothing: one transaction for every job. */
  enqueueBulk(ctx: RequestContext, inputs: EnqueueInput[]): Promise<JobStatus[]>;
  getStatus(ctx: RequestContext, id: string): Promise<JobStatus>;
  list(
    ctx: RequestContext,
    query: { status?: JobStatusName; type?: string; dead?: boolean; limit: number; offset: number },
  ): Promise<{ items: JobStatus[]; total: number }>;
  /** A pending or running job; a finished one is a 409. */
  cancel(ctx: RequestContext, id: string): Promise<JobStatus>;
  /**
   * Called when a cancelled job is running on no handler of this process: another
   * process runs it, and the listener tells it (the events module does, over the bus).
   */
  onCancelElsewhere(listener: (ctx: RequestContext, job: JobStatus) => Promise<void>): void;
  /** Aborts the job's handler when this process runs it. @returns whether it did */
  abortRunning(jobId: string): boolean;
  /** Called when a job this process ran completed, or failed after its last attempt. */
  onFinished(listener: (job: JobFinished) => void): void;
  /** Re-drives a failed or cancelled job from its first attempt. */
  retry(ctx: RequestContext, id: string): Promise<JobStatus>;
  /** The types this process defines and those other processes declared (split roles). */
  types(): string[];
  /**
   * Declares the types defined here in `core.job_types` and learns those other
   * processes declared, so an api process accepts what only a worker runs.
   */
  syncTypes(): Promise<void>;
  /** Throws PLX_JOB_TYPE_UNKNOWN / PLX_VALIDATION (or a type's own `validate` error) for what `enqueue` would refuse. */
  check(input: EnqueueInput): Promise<void>;
  /**
   * Enqueues inside the caller's transaction: the job exists only if it
   * commits, and reaches its engine after the commit (a step `tx` runs). The
   * type's queue must be ready: the module prepares every defined type at start.
   *
   * @example await inTransaction(db, (tx) => jobs.enqueueIn(tx, ctx, { type: 'search.reindex' }))
   */
  enqueueIn(tx: Transaction, ctx: RequestContext, input: EnqueueInput): Promise<JobStatus>;
  /** Starts the engine and creates the queues of `types`; idempotent, retried after a failure. */
  prepare(types: Iterable<string>): Promise<void>;
  /**
   * Scheduler role: delivers pending jobs a crash left undelivered for more than
   * `olderThanMs`; on engines outside our transaction also sends again deliveries
   * claimed but maybe not sent, and lets waiting jobs into their windows.
   * @returns how many rows (or tenant and type pairs) it handled
   */
  sweep(olderThanMs?: number): Promise<number>;
  /** Starts the workers of every defined type (the worker role). */
  start(): Promise<void>;
  /** Stops fetching at once, lets running jobs finish within `timeoutMs`, gives the rest back. @returns how many were given back */
  stopWorkers(timeoutMs: number): Promise<number>;
  stop(timeoutMs: number): Promise<void>;
}
