import { randomUUID } from 'node:crypto';
import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { type Kysely, type Selectable, sql } from 'kysely';
import type { Logger } from 'pino';
import { type RequestContext, requireTenant, type TenantRef } from '../../context.js';
import { isUniqueViolation } from '../../infra/database/errors.js';
import type { CoreDatabase } from '../../infra/database/index.js';
import type { JobStatusName, JobsTable } from '../../infra/database/tables.js';
import { PlexicaError } from '../../infra/errors.js';
import type { AuditService } from '../audit/service.js';
import type { QueueDriver } from './driver.js';
import { byQueue, createJobRunner, type Definition, deliveryOf, queueOf } from './runner.js';
import { createDispatchWindow, type TenantType } from './window.js';

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
  types(): string[];
  /** Throws PLX_JOB_TYPE_UNKNOWN / PLX_VALIDATION for an input `enqueue` would refuse. */
  check(input: EnqueueInput): void;
  /**
   * Enqueues inside the caller's transaction: the job exists only if it
   * commits. Call `prepare` for its type before opening the transaction and
   * `wake` after it commits.
   */
  enqueueIn(trx: Kysely<CoreDatabase>, ctx: RequestContext, input: EnqueueInput): Promise<JobStatus>;
  prepare(types: Iterable<string>): Promise<void>;
  /** After `enqueueIn`'s transaction commits: delivers what it could not, wakes workers. */
  committed(jobIds: string[]): Promise<void>;
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

const JOB_TYPE = /^[a-z][a-z0-9_.-]{0,99}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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
  db: Kysely<CoreDatabase>;
  driver: QueueDriver;
  logger: Logger;
  /** Where jobs created by a principal are recorded (`job.created`); omitted in engine-only tests. */
  audit?: AuditService;
}): JobQueueService {
  const { db, driver, logger, audit } = options;
  const definitions = new Map<string, Definition>();
  // an engine outside our transaction gets each tenant's jobs a window at a time (see window.ts)
  const dispatchWindow = driver.transactional
    ? undefined
    : createDispatchWindow({ db, driver, definitions, logger });
  const pump = (pairs: TenantType[]) =>
    dispatchWindow
      ?.pump(pairs)
      .catch((err: unknown) => logger.error({ err }, 'could not hand jobs to the engine; the sweep retries'));
  const runner = createJobRunner({
    db,
    driver,
    definitions,
    logger,
    ...(dispatchWindow && { onSettled: (tenantId: string, type: string) => void pump([{ tenantId, type }]) }),
  });
  let started = false;

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

  const validate = (input: EnqueueInput, index?: number) => {
    const field = (name: string) => (index === undefined ? name : `${index}.${name}`);
    const definition = definitions.get(input.type);
    if (!definition) {
      throw new PlexicaError('PLX_JOB_TYPE_UNKNOWN', {
        detail: `no job type "${input.type}" is registered`,
        errors: [
          { field: field('type'), message: `unknown job type; known: ${[...definitions.keys()].join(', ')}` },
        ],
      });
    }
    const data = input.data ?? {};
    if (definition.check && !definition.check.Check(data)) {
      const errors = [...definition.check.Errors(data)].slice(0, 10).map((e) => ({
        field: field(`data${e.path.replaceAll('/', '.')}`),
        message: e.message,
      }));
      throw new PlexicaError('PLX_VALIDATION', { detail: `payload of ${input.type} is invalid`, errors });
    }
    const runAt = input.runAt === undefined ? new Date() : new Date(input.runAt);
    if (Number.isNaN(runAt.getTime())) {
      throw new PlexicaError('PLX_VALIDATION', {
        errors: [{ field: field('runAt'), message: 'is not a date' }],
      });
    }
    return { definition, data, runAt };
  };

  /**
   * Hands rows to a transactional engine, one call per queue: in the rows' own
   * transaction with the delivery ids they were inserted with, or, for rows
   * `sweep` found without one, after the fact, recording the ids afterwards.
   * Other engines get their rows through the dispatch window (window.ts).
   */
  const dispatch = async (executor: Kysely<CoreDatabase>, rows: Selectable<JobsTable>[]) => {
    const deliveries = rows.map((row) =>
      deliveryOf(row, definitions.get(row.type), row.delivery_id ?? undefined),
    );
    for (const [queue, group] of byQueue(rows)) {
      const ids = new Set(group.map((row) => row.id));
      await driver.send(
        queue,
        deliveries.filter((d) => ids.has(d.jobId)),
        driver.transactional ? executor : undefined,
      );
    }
    // rows inserted with their delivery id (transactional engines) need nothing more
    if (rows.some((row) => !row.delivery_id)) {
      await sql`
        update core.jobs as j set delivery_id = d.id
        from jsonb_to_recordset(${JSON.stringify(deliveries)}::jsonb) as d(id text, "jobId" uuid)
        where j.id = d."jobId" and j.delivery_id is null`.execute(executor);
    }
  };

  /** After a commit: dispatches what the transaction could not, and wakes local workers. */
  const afterCommit = async (rows: Selectable<JobsTable>[]) => {
    const undelivered = rows.filter((row) => !row.delivery_id && row.status === 'pending');
    if (dispatchWindow) {
      const now = Date.now();
      await pump(
        undelivered
          .filter((row) => row.run_at.getTime() <= now)
          .map((row) => ({ tenantId: row.tenant_id, type: row.type })),
      );
      for (const row of undelivered) if (row.run_at.getTime() > now) dispatchWindow.dueAt(row.run_at);
    } else if (undelivered.length > 0) {
      try {
        await dispatch(db, undelivered);
      } catch (err) {
        // the jobs are stored; the scheduler's sweep delivers them when the engine is back
        logger.error(
          { err, jobs: undelivered.length },
          'could not hand jobs to the engine; the sweep retries',
        );
      }
    }
    // a delayed job has nothing for a worker to fetch yet
    const due = rows.filter((row) => row.status === 'pending' && row.run_at.getTime() <= Date.now());
    for (const queue of byQueue(due).keys()) driver.wake(queue);
  };

  /**
   * Inserts the jobs in `trx` in one statement (and their deliveries in one
   * per queue); an idempotency key seen before returns the first job.
   * @returns a row per input, in input order
   */
  const insert = async (
    trx: Kysely<CoreDatabase>,
    ctx: RequestContext,
    tenant: TenantRef,
    inputs: EnqueueInput[],
  ) => {
    const checked = inputs.map((input, index) => ({
      input,
      ...validate(input, inputs.length > 1 ? index : undefined),
    }));
    const keys = [...new Set(checked.flatMap((c) => c.input.idempotencyKey ?? []))];
    const byKey = new Map<string, Selectable<JobsTable>>();
    if (keys.length > 0) {
      const existing = await trx
        .selectFrom('core.jobs')
        .selectAll()
        .where('tenant_id', '=', tenant.id)
        .where('idempotency_key', 'in', keys)
        .execute();
      for (const row of existing) byKey.set(row.idempotency_key!, row);
    }
    // a key twice in one bulk is one job
    const fresh = checked.filter(
      (c, i) =>
        !c.input.idempotencyKey ||
        (!byKey.has(c.input.idempotencyKey) &&
          checked.findIndex((o) => o.input.idempotencyKey === c.input.idempotencyKey) === i),
    );
    const inserted =
      fresh.length === 0
        ? []
        : await trx
            .insertInto('core.jobs')
            .values(
              fresh.map(({ input, definition, data, runAt }) => ({
                tenant_id: tenant.id,
                type: input.type,
                data: JSON.stringify(data),
                priority: input.priority ?? 0,
                max_attempts: input.maxAttempts ?? definition.maxAttempts,
                idempotency_key: input.idempotencyKey ?? null,
                trace_id: ctx.traceId,
                run_at: runAt,
                delivery_id: driver.transactional ? randomUUID() : null,
              })),
            )
            .returningAll()
            .execute();
    if (driver.transactional) await dispatch(trx, inserted);
    // what a principal created, in the same transaction; the scheduler's own runs are not
    // (a cron every second would flood the log), nor jobs an idempotency key found
    if (audit && ctx.principal) {
      await audit.recordAll(
        ctx,
        inserted.map((row) => ({
          action: 'job.created',
          targetType: 'job',
          targetId: row.id,
          data: { type: row.type, runAt: row.run_at.toISOString() },
        })),
        trx,
      );
    }
    // `returning` keeps the order of `values`
    fresh.forEach((c, i) => {
      if (c.input.idempotencyKey) byKey.set(c.input.idempotencyKey, inserted[i]!);
    });
    let next = 0;
    return checked.map((c) =>
      c.input.idempotencyKey ? byKey.get(c.input.idempotencyKey)! : inserted[next++]!,
    );
  };

  const enqueueAll = async (ctx: RequestContext, inputs: EnqueueInput[]) => {
    const tenant = requireTenant(ctx);
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
    await afterCommit(rows);
    return rows.map(toStatus);
  };

  return {
    define(definition) {
      if (started) throw new Error(`job type ${definition.type} defined after the workers started`);
      if (!JOB_TYPE.test(definition.type))
        throw new Error(`job type "${definition.type}" is not module.action`);
      if (definitions.has(definition.type)) throw new Error(`job type ${definition.type} is already defined`);
      definitions.set(definition.type, {
        type: definition.type,
        handler: definition.handler as JobDefinition['handler'],
        maxAttempts: definition.maxAttempts ?? 3,
        timeoutMs: definition.timeoutMs ?? 300_000,
        concurrency: definition.concurrency ?? 5,
        tenantConcurrency: definition.tenantConcurrency ?? 2,
        retryDelaySeconds: definition.retryDelaySeconds,
        ...(definition.schema && { check: TypeCompiler.Compile(definition.schema) }),
      });
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
      if (row.delivery_id) await pump([{ tenantId: row.tenant_id, type: row.type }]);
      return toStatus(updated);
    },

    async retry(ctx, id) {
      const row = await load(ctx, id);
      if (row.status !== 'failed' && row.status !== 'cancelled') {
        throw new PlexicaError('PLX_JOB_NOT_RETRYABLE', {
          detail: `job ${id} is ${row.status}; only failed and cancelled jobs can be retried`,
        });
      }
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
            delivery_id: driver.transactional ? randomUUID() : null,
            updated_at: sql<Date>`now()`,
          })
          .where('id', '=', id)
          .where('status', 'in', ['failed', 'cancelled'])
          .returningAll()
          .executeTakeFirst();
        if (!reset)
          throw new PlexicaError('PLX_JOB_NOT_RETRYABLE', { detail: `job ${id} changed meanwhile` });
        if (driver.transactional) await dispatch(trx, [reset]);
        return reset;
      });
      await afterCommit([updated]);
      return toStatus(updated);
    },

    types: () => [...definitions.keys()].sort(),
    check(input) {
      validate(input);
    },
    async enqueueIn(trx, ctx, input) {
      const [row] = await insert(trx, ctx, requireTenant(ctx), [input]);
      return toStatus(row!);
    },
    prepare,
    async committed(jobIds) {
      if (jobIds.length === 0) return;
      await afterCommit(await db.selectFrom('core.jobs').selectAll().where('id', 'in', jobIds).execute());
    },
    async sweep(olderThanMs = 30_000) {
      if (dispatchWindow) {
        await prepare(definitions.keys());
        return (await dispatchWindow.resendStale(olderThanMs)) + (await dispatchWindow.pumpDue());
      }
      const stale = await db
        .selectFrom('core.jobs')
        .selectAll()
        .where('status', '=', 'pending')
        .where('delivery_id', 'is', null)
        // updated_at: a job just re-driven by `retry` is being dispatched right now
        // the database's clock, not ours: instances and the database may disagree by a few ms
        .where('updated_at', '<', sql<Date>`now() - make_interval(secs => ${olderThanMs / 1000})`)
        .limit(1000)
        .execute();
      if (stale.length === 0) return 0;
      await prepare(new Set(stale.map((r) => r.type)));
      await afterCommit(stale);
      return stale.length;
    },

    async start() {
      if (started) return;
      started = true;
      await prepare(definitions.keys());
      for (const definition of definitions.values()) {
        const queue = queueOf(definition.type);
        await driver.work(
          queue,
          { concurrency: definition.concurrency, tenantConcurrency: definition.tenantConcurrency },
          (received) => runner.run(definition.type, received),
        );
      }
    },

    async stop(timeoutMs) {
      dispatchWindow?.close();
      if (!ready) return;
      await ready.catch(() => {});
      await driver.stop(timeoutMs);
    },
  };
}
