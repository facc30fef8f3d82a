import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { type Kysely, type Selectable, sql } from 'kysely';
import type { Logger } from 'pino';
import { type RequestContext, requireTenant, type TenantRef } from '../../context.js';
import { isUniqueViolation } from '../../infra/database/errors.js';
import type { CoreDatabase } from '../../infra/database/index.js';
import type { JobStatusName, JobsTable, TenantSettings } from '../../infra/database/tables.js';
import { PlexicaError } from '../../infra/errors.js';
import { toTenantRef } from '../tenants/service.js';
import type { QueueDriver } from './driver.js';

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
  /** Delivers pending jobs a crash left undelivered for more than `olderThanMs` (scheduler role). @returns how many */
  sweep(olderThanMs?: number): Promise<number>;
  /** Starts the workers of every defined type (the worker role). */
  start(): Promise<void>;
  stop(timeoutMs: number): Promise<void>;
}

const JOB_TYPE = /^[a-z][a-z0-9_.-]{0,99}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Engine redeliveries allowed for abandoned leases (crashed workers), on top of the attempts. */
const CRASH_ALLOWANCE = 5;
/** A suspended tenant's job waits this long before it is looked at again. */
const SUSPENDED_DELAY_MS = 60_000;

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

const queueOf = (type: string) => `plexica.${type}`;
const message = (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, 2000);

export function createJobQueueService(options: {
  db: Kysely<CoreDatabase>;
  driver: QueueDriver;
  logger: Logger;
}): JobQueueService {
  const { db, driver, logger } = options;
  const definitions = new Map<
    string,
    Required<Omit<JobDefinition, 'schema' | 'retryDelaySeconds'>> & {
      retryDelaySeconds: number | undefined;
      check?: ReturnType<typeof TypeCompiler.Compile>;
    }
  >();
  const running = new Map<string, AbortController>();
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
      if (queues.has(type) || !definitions.has(type)) continue;
      await driver.ensureQueue(queueOf(type));
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
   * Hands a job row to the engine and records the delivery. In `executor`'s
   * transaction when the engine can join it (postgres); the others are
   * dispatched after the commit, and rows a crash left undelivered are found by
   * `sweep`.
   */
  const dispatch = async (executor: Kysely<CoreDatabase>, row: Selectable<JobsTable>) => {
    const deliveryId = await driver.send(
      queueOf(row.type),
      {
        jobId: row.id,
        tenantId: row.tenant_id,
        priority: row.priority,
        runAt: row.run_at,
        retryLimit: row.max_attempts - row.attempts - 1 + CRASH_ALLOWANCE,
        retryDelaySeconds: definitions.get(row.type)?.retryDelaySeconds,
      },
      driver.transactional ? executor : undefined,
    );
    return executor
      .updateTable('core.jobs')
      .set({ delivery_id: deliveryId })
      .where('id', '=', row.id)
      .returningAll()
      .executeTakeFirstOrThrow();
  };

  /** After a commit: dispatches what the transaction could not, and wakes local workers. */
  const afterCommit = async (rows: Selectable<JobsTable>[]) => {
    const out: Selectable<JobsTable>[] = [];
    for (const row of rows) {
      if (row.delivery_id || row.status !== 'pending') {
        out.push(row);
        continue;
      }
      try {
        out.push(await dispatch(db, row));
      } catch (err) {
        // the job is stored; the scheduler's sweep delivers it when the engine is back
        logger.error({ err, jobId: row.id }, 'could not hand a job to the engine; the sweep retries');
        out.push(row);
      }
    }
    for (const type of new Set(rows.map((r) => r.type))) driver.wake(queueOf(type));
    return out;
  };

  /** Inserts the jobs and their deliveries in `trx`; an idempotency key seen before returns the first job. */
  const insert = async (
    trx: Kysely<CoreDatabase>,
    ctx: RequestContext,
    tenant: TenantRef,
    inputs: EnqueueInput[],
  ) => {
    const out: Selectable<JobsTable>[] = [];
    for (const [index, input] of inputs.entries()) {
      const { definition, data, runAt } = validate(input, inputs.length > 1 ? index : undefined);
      if (input.idempotencyKey) {
        const existing = await trx
          .selectFrom('core.jobs')
          .selectAll()
          .where('tenant_id', '=', tenant.id)
          .where('idempotency_key', '=', input.idempotencyKey)
          .executeTakeFirst();
        if (existing) {
          out.push(existing);
          continue;
        }
      }
      const maxAttempts = input.maxAttempts ?? definition.maxAttempts;
      const row = await trx
        .insertInto('core.jobs')
        .values({
          tenant_id: tenant.id,
          type: input.type,
          data: JSON.stringify(data),
          priority: input.priority ?? 0,
          max_attempts: maxAttempts,
          idempotency_key: input.idempotencyKey ?? null,
          trace_id: ctx.traceId,
          run_at: runAt,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      out.push(driver.transactional ? await dispatch(trx, row) : row);
    }
    return out;
  };

  const enqueueAll = async (ctx: RequestContext, inputs: EnqueueInput[]) => {
    const tenant = requireTenant(ctx);
    await prepare(inputs.map((i) => i.type));
    let rows: Selectable<JobsTable>[];
    try {
      rows = await db.transaction().execute((trx) => insert(trx, ctx, tenant, inputs));
    } catch (err) {
      // two requests with the same new key at once: the loser returns the winner's job
      if (isUniqueViolation(err) && inputs.length === 1 && inputs[0]?.idempotencyKey) {
        rows = await db.transaction().execute((trx) => insert(trx, ctx, tenant, inputs));
      } else throw err;
    }
    return (await afterCommit(rows)).map(toStatus);
  };

  /** Moves a job's row; `from` guards against racing transitions. @returns the row, or undefined if it was not in `from` */
  const transition = (id: string, from: JobStatusName[], set: Record<string, unknown>) =>
    db
      .updateTable('core.jobs')
      .set({ ...set, updated_at: sql<Date>`now()` } as never)
      .where('id', '=', id)
      .where('status', 'in', from)
      .returningAll()
      .executeTakeFirst();

  /** One delivery: the whole life of an attempt, written to `core.jobs` at every step. */
  const run = async (type: string, jobId: string, engineSignal: AbortSignal) => {
    const definition = definitions.get(type)!;
    // one statement claims the job (pending or running → running) and reads its tenant; a job
    // of a suspended or deleted tenant is left as it is and handled below
    const { rows } = await sql<
      Selectable<JobsTable> & { tenant_status: string; slug: string; settings: TenantSettings }
    >`
      update core.jobs as j
      set status = case when t.status = 'active' then 'running' else j.status end,
          started_at = case when t.status = 'active' then coalesce(j.started_at, now()) else j.started_at end,
          updated_at = now()
      from core.tenants as t
      where j.id = ${jobId} and t.id = j.tenant_id and j.status in ('pending', 'running')
      returning j.*, t.status as tenant_status, t.slug, t.settings`.execute(db);
    const started = rows[0];
    // cancelled, finished or purged: nothing to do, and the delivery is settled
    if (!started) return;
    if (started.tenant_status === 'deleted') {
      await transition(jobId, ['pending', 'running'], {
        status: 'cancelled',
        last_error: 'the tenant was deleted',
        finished_at: sql<Date>`now()`,
      });
      return;
    }
    if (started.tenant_status === 'suspended') {
      // a suspended tenant's jobs wait; resuming the tenant lets them run
      const runAt = new Date(Date.now() + SUSPENDED_DELAY_MS);
      const deliveryId = await driver.send(queueOf(type), {
        jobId,
        tenantId: started.tenant_id,
        priority: started.priority,
        runAt,
        retryLimit: started.max_attempts - started.attempts - 1 + CRASH_ALLOWANCE,
        retryDelaySeconds: definition.retryDelaySeconds,
      });
      await transition(jobId, ['pending', 'running'], {
        status: 'pending',
        run_at: runAt,
        delivery_id: deliveryId,
        last_error: 'waiting: the tenant is suspended',
      });
      return;
    }
    const tenant = { id: started.tenant_id, slug: started.slug, settings: started.settings };

    const controller = new AbortController();
    running.set(jobId, controller);
    const abortOnEngine = () => controller.abort(new Error('the worker gave up this delivery'));
    engineSignal.addEventListener('abort', abortOnEngine, { once: true });
    const timer = setTimeout(
      () => controller.abort(new Error(`timed out after ${definition.timeoutMs} ms`)),
      definition.timeoutMs,
    );
    const ref = toTenantRef(tenant);
    const attempt = started.attempts + 1;
    try {
      const result = await Promise.race([
        definition.handler({
          id: jobId,
          type,
          data: started.data,
          attempt,
          tenant: ref,
          ctx: { traceId: started.trace_id ?? jobId, principal: null, tenant: ref },
          signal: controller.signal,
          async updateProgress(percent) {
            const value = Math.max(0, Math.min(100, Math.round(percent)));
            await transition(jobId, ['running'], { progress: value });
          },
        }),
        new Promise<never>((_, reject) => {
          controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
        }),
      ]);
      await transition(jobId, ['running'], {
        status: 'completed',
        result: JSON.stringify(result ?? null),
        progress: 100,
        attempts: attempt,
        finished_at: sql<Date>`now()`,
      });
    } catch (err) {
      if (engineSignal.aborted) {
        // shutdown or lost lease: not an attempt; the engine delivers it again
        await transition(jobId, ['running'], {
          status: 'pending',
          last_error: 'the worker stopped; it runs again',
        });
        throw err;
      }
      const cancelled = controller.signal.aborted && controller.signal.reason === 'cancelled';
      if (cancelled) return;
      const final = attempt >= started.max_attempts;
      logger.warn({ err, jobId, type, attempt, final }, 'job attempt failed');
      await transition(jobId, ['running'], {
        status: final ? 'failed' : 'pending',
        dead: final,
        attempts: attempt,
        last_error: message(err),
        ...(final && { finished_at: sql<Date>`now()` }),
      });
      // not final: the engine retries with exponential backoff and jitter
      if (!final) throw err;
    } finally {
      clearTimeout(timer);
      engineSignal.removeEventListener('abort', abortOnEngine);
      running.delete(jobId);
    }
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
      const updated = await transition(id, ['pending', 'running'], {
        status: 'cancelled',
        finished_at: sql<Date>`now()`,
        last_error: row.status === 'running' ? 'cancelled while running' : null,
      });
      if (!updated) {
        throw new PlexicaError('PLX_JOB_NOT_CANCELLABLE', {
          detail: `job ${id} is ${row.status}; only pending and running jobs can be cancelled`,
        });
      }
      running.get(id)?.abort('cancelled');
      if (row.status === 'pending' && row.delivery_id) {
        await driver.cancel(queueOf(row.type), row.delivery_id).catch((err: unknown) =>
          // the worker checks the row before it runs anything, so a late delivery is harmless
          logger.warn({ err, jobId: id }, 'could not withdraw a cancelled delivery'),
        );
      }
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
            delivery_id: null,
            updated_at: sql<Date>`now()`,
          })
          .where('id', '=', id)
          .where('status', 'in', ['failed', 'cancelled'])
          .returningAll()
          .executeTakeFirst();
        if (!reset)
          throw new PlexicaError('PLX_JOB_NOT_RETRYABLE', { detail: `job ${id} changed meanwhile` });
        return driver.transactional ? dispatch(trx, reset) : reset;
      });
      const [delivered] = await afterCommit([updated]);
      return toStatus(delivered!);
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
      const stale = await db
        .selectFrom('core.jobs')
        .selectAll()
        .where('status', '=', 'pending')
        .where('delivery_id', 'is', null)
        .where('created_at', '<', new Date(Date.now() - olderThanMs))
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
          ({ jobId, signal }) => run(definition.type, jobId, signal),
        );
      }
    },

    async stop(timeoutMs) {
      if (!ready) return;
      await ready.catch(() => {});
      await driver.stop(timeoutMs);
    },
  };
}
