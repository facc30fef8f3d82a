import type { TSchema } from '@sinclair/typebox';
import { type Kysely, type Selectable, sql } from 'kysely';
import type { Logger } from 'pino';
import { type RequestContext, requireTenant, type TenantRef } from '../../context.js';
import { isUniqueViolation } from '../../infra/database/errors.js';
import type { Transaction } from '../../infra/database/transaction.js';
import { PlexicaError } from '../../infra/errors.js';
import { UUID } from '../../infra/uuid.js';
import type { AuditService } from '../audit/index.js';
import { createDeclaredTypes } from './declared.js';
import { checkInput, type Definition, toDefinition } from './definitions.js';
import { createDispatcher } from './dispatch.js';
import type { QueueDriver } from './drivers/queue-driver.js';
import { insertJobs, oneJobInsert } from './insert.js';
import { createJobRunner, queueOf } from './runner.js';
import type { JobStatusName, JobsTable, JobsTables } from './tables.js';

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
  stop(timeoutMs: number): Promise<void>;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const toStatus = (row: Selectable<JobsTable>): JobStatus => ({
  id: row.id,
  type: row.type,
  status: row.status,
  dead: row.dead,
  progress: row.progress,
  attempts: row.attempts,
  maxAttempts: row.max_attempts,
  priority: row.priority,
  lastError: row.last_error,
  data: row.data,
  result: row.result ?? null,
  traceId: row.trace_id,
  idempotencyKey: row.idempotency_key,
  runAt: row.run_at.toISOString(),
  createdAt: row.created_at.toISOString(),
  startedAt: iso(row.started_at),
  finishedAt: iso(row.finished_at),
  updatedAt: row.updated_at.toISOString(),
});

export function createJobQueueService(options: {
  db: Kysely<JobsTables>;
  driver: QueueDriver;
  logger: Logger;
  /** Where jobs created by a principal are recorded (`job.created`); omitted in engine-only tests. */
  audit?: AuditService;
}): JobQueueService {
  const { db, driver, logger, audit } = options;
  const definitions = new Map<string, Definition>();
  const dispatcher = createDispatcher({ db, driver, definitions, logger });
  const declared = createDeclaredTypes({ db, definitions, logger });
  const runner = createJobRunner({
    db,
    driver,
    definitions,
    logger,
    onSettled: (tenantId: string, type: string) => dispatcher.settled(tenantId, type),
  });
  let started = false;
  const committing = new WeakMap<Transaction, Selectable<JobsTable>[]>();

  // the engine starts on first use, in every role: the api role enqueues, the worker role works
  let ready: Promise<void> | undefined;
  const queues = new Set<string>();
  const prepare = async (types: Iterable<string>) => {
    // a failed start (database down) is tried again by the next caller
    ready ??= driver.start().catch((err: unknown) => {
      ready = undefined;
      throw new PlexicaError('PLX_JOBS_UNAVAILABLE', { detail: 'the job engine did not start', cause: err });
    });
    await ready;
    for (const type of types) {
      const definition = definitions.get(type);
      if (queues.has(type) || !definition) continue;
      await driver.ensureQueue(queueOf(type), { timeoutMs: definition.timeoutMs });
      queues.add(type);
    }
  };

  const notFound = (id: string) => new PlexicaError('PLX_JOB_NOT_FOUND', { detail: `no job ${id}` });

  const load = async (ctx: RequestContext, id: string) => {
    const tenant = requireTenant(ctx);
    if (!UUID.test(id)) throw notFound(id);
    const row = await db
      .selectFrom('core.jobs')
      .selectAll()
      .where('id', '=', id)
      .where('tenant_id', '=', tenant.id)
      .executeTakeFirst();
    if (!row) throw notFound(id);
    return row;
  };

  const insertOne = oneJobInsert(db);
  const insert = (trx: Kysely<JobsTables>, ctx: RequestContext, tenant: TenantRef, inputs: EnqueueInput[]) =>
    insertJobs(trx, ctx, tenant, inputs, { definitions, dispatcher, audit, insertOne });

  /** Everything `insertJobs` checks, and before it what needs I/O: types declared elsewhere, `validate`. */
  const check = async (inputs: EnqueueInput[]) => {
    await declared.ensure(inputs.map((i) => i.type));
    for (const [index, input] of inputs.entries()) {
      const { definition, data } = checkInput(definitions, input, inputs.length > 1 ? index : undefined);
      await definition.validate?.(data);
    }
  };

  const enqueueAll = async (ctx: RequestContext, inputs: EnqueueInput[]) => {
    const tenant = requireTenant(ctx);
    await check(inputs);
    await prepare(inputs.map((i) => i.type));
    let rows: Selectable<JobsTable>[];
    try {
      rows = await db.transaction().execute((trx) => insert(trx, ctx, tenant, inputs));
    } catch (err) {
      // two requests with the same new key at once: the loser returns the winner's job
      if (isUniqueViolation(err) && inputs.some((i) => i.idempotencyKey)) {
        rows = await db.transaction().execute((trx) => insert(trx, ctx, tenant, inputs));
      } else throw err;
    }
    await dispatcher.afterCommit(rows);
    return rows.map(toStatus);
  };

  return {
    define(definition) {
      if (started) throw new Error(`job type ${definition.type} defined after the workers started`);
      definitions.set(definition.type, toDefinition(definition, definitions));
    },

    enqueue: async (ctx, input) => (await enqueueAll(ctx, [input]))[0]!,
    enqueueBulk: (ctx, inputs) => enqueueAll(ctx, inputs),
    getStatus: async (ctx, id) => toStatus(await load(ctx, id)),

    async list(ctx, { status, type, dead, limit, offset }) {
      const tenant = requireTenant(ctx);
      let query = db.selectFrom('core.jobs').where('tenant_id', '=', tenant.id);
      if (status) query = query.where('status', '=', status);
      if (type) query = query.where('type', '=', type);
      if (dead !== undefined) query = query.where('dead', '=', dead);
      const [rows, count] = await Promise.all([
        query.selectAll().orderBy('created_at', 'desc').orderBy('id').limit(limit).offset(offset).execute(),
        query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      ]);
      return { items: rows.map(toStatus), total: Number(count.n) };
    },

    async cancel(ctx, id) {
      const row = await load(ctx, id);
      const updated = await db
        .updateTable('core.jobs')
        .set({
          status: 'cancelled',
          finished_at: sql<Date>`now()`,
          last_error: row.status === 'running' ? 'cancelled while running' : null,
          updated_at: sql<Date>`now()`,
        })
        .where('id', '=', id)
        .where('status', 'in', ['pending', 'running'])
        .returningAll()
        .executeTakeFirst();
      if (!updated) {
        throw new PlexicaError('PLX_JOB_NOT_CANCELLABLE', {
          detail: `job ${id} is ${row.status}; only pending and running jobs can be cancelled`,
        });
      }
      runner.abort(id, 'cancelled');
      if (row.status === 'pending' && row.delivery_id) {
        await driver.cancel(queueOf(row.type), row.delivery_id).catch((err: unknown) =>
          // the worker checks the row before it runs anything, so a late delivery is harmless
          logger.warn({ err, jobId: id }, 'could not withdraw a cancelled delivery'),
        );
      }
      if (row.delivery_id) dispatcher.settled(row.tenant_id, row.type);
      return toStatus(updated);
    },

    async retry(ctx, id) {
      const row = await load(ctx, id);
      if (row.status !== 'failed' && row.status !== 'cancelled') {
        throw new PlexicaError('PLX_JOB_NOT_RETRYABLE', {
          detail: `job ${id} is ${row.status}; only failed and cancelled jobs can be retried`,
        });
      }
      await declared.ensure([row.type]);
      await prepare([row.type]);
      if (!definitions.has(row.type)) {
        throw new PlexicaError('PLX_JOB_TYPE_UNKNOWN', { detail: `no job type "${row.type}" is registered` });
      }
      const updated = await db.transaction().execute(async (trx) => {
        const reset = await trx
          .updateTable('core.jobs')
          .set({
            status: 'pending',
            dead: false,
            attempts: 0,
            progress: 0,
            last_error: null,
            result: null,
            run_at: sql<Date>`now()`,
            started_at: null,
            finished_at: null,
            delivery_id: dispatcher.newDeliveryId(),
            updated_at: sql<Date>`now()`,
          })
          .where('id', '=', id)
          .where('status', 'in', ['failed', 'cancelled'])
          .returningAll()
          .executeTakeFirst();
        if (!reset)
          throw new PlexicaError('PLX_JOB_NOT_RETRYABLE', { detail: `job ${id} changed meanwhile` });
        await dispatcher.inTransaction(trx, [reset]);
        return reset;
      });
      await dispatcher.afterCommit([updated]);
      return toStatus(updated);
    },

    types: () => [...definitions.keys()].sort(),
    async syncTypes() {
      await declared.publish();
      await declared.refresh();
    },
    check: (input) => check([input]),
    async enqueueIn(tx, ctx, input) {
      if (!queues.has(input.type) && definitions.has(input.type)) {
        // preparing needs the engine's own connection, which the open transaction may hold
        throw new PlexicaError('PLX_JOBS_UNAVAILABLE', {
          detail: `the queue of ${input.type} is not ready yet; the job engine may be down`,
        });
      }
      const [row] = await insert(tx.db, ctx, requireTenant(ctx), [input]);
      // one after-commit step per transaction, for every job it enqueued (a cron tick enqueues hundreds)
      let pending = committing.get(tx);
      if (!pending) {
        const rows: Selectable<JobsTable>[] = [];
        committing.set(tx, rows);
        pending = rows;
        tx.afterCommit(() => dispatcher.afterCommit(rows));
      }
      pending.push(row!);
      return toStatus(row!);
    },
    prepare,
    sweep: (olderThanMs = 30_000) => dispatcher.sweep(olderThanMs, prepare),

    async start() {
      if (started) return;
      started = true;
      await prepare(definitions.keys());
      for (const definition of definitions.values()) {
        if (definition.declared) continue;
        const queue = queueOf(definition.type);
        await driver.work(
          queue,
          { concurrency: definition.concurrency, tenantConcurrency: definition.tenantConcurrency },
          (received) => runner.run(definition.type, received),
        );
      }
    },

    async stop(timeoutMs) {
      dispatcher.close();
      if (!ready) return;
      await ready.catch(() => {});
      await driver.stop(timeoutMs);
    },
  };
}
