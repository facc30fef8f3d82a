import { type Kysely, type Selectable, sql } from 'kysely';
import type { Logger } from 'pino';
import { type RequestContext, requireTenant, type TenantRef } from '../../context.js';
import { isUniqueViolation } from '../../infra/database/errors.js';
import { inTransaction, type Transaction } from '../../infra/database/transaction.js';
import { PlexicaError } from '../../infra/errors.js';
import { UUID } from '../../infra/uuid.js';
import type { AuditService } from '../audit/index.js';
import { createDeclaredTypes } from './declared.js';
import { checkInput, type Definition, toDefinition } from './definitions.js';
import { createDispatcher } from './dispatch.js';
import type { QueueDriver } from './drivers/queue-driver.js';
import { insertJobs, oneJobInsert } from './insert.js';
import { createJobRunner, type JobFinished, queueOf } from './runner.js';
import type { JobsTable, JobsTables } from './tables.js';

export type { EnqueueInput, JobDefinition, JobQueueService, JobRun, JobStatus } from './contract.js';

import type { EnqueueInput, JobQueueService, JobStatus } from './contract.js';

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
    onFinished: (job) => {
      for (const listener of finishListeners) listener(job);
    },
  });
  let started = false;
  const cancelListeners: ((ctx: RequestContext, job: JobStatus) => Promise<void>)[] = [];
  const finishListeners: ((job: JobFinished) => void)[] = [];
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
  const insert = (
    tx: Transaction<JobsTables>,
    ctx: RequestContext,
    tenant: TenantRef,
    inputs: EnqueueInput[],
  ) => insertJobs(tx, ctx, tenant, inputs, { definitions, dispatcher, audit, insertOne });

  /** Everything `insertJobs` checks, and before it what needs I/O: types declared elsewhere, `validate`. */
  const check = async (inputs: EnqueueInput[]) => {
    await declared.ensure(inputs.map((i) => i.type));
    for (const [index, input] of inputs.entries()) {
      const { definition, data } = checkInput(definitions, input, inputs.length > 1 ? index : undefined);
      await definition.validate?.(data);
    }
  };

  const refuseWhileDown = () => {
    if (driver.available && !driver.available())
      throw new PlexicaError('PLX_JOBS_UNAVAILABLE', {
        detail: 'the job engine cannot take jobs right now; try again shortly',
        extra: { retryAfter: 5 },
      });
  };

  const enqueueAll = async (ctx: RequestContext, inputs: EnqueueInput[]) => {
    const tenant = requireTenant(ctx);
    await check(inputs);
    await prepare(inputs.map((i) => i.type));
    refuseWhileDown();
    let rows: Selectable<JobsTable>[];
    try {
      rows = await inTransaction(db, (tx) => insert(tx, ctx, tenant, inputs));
    } catch (err) {
      // two requests with the same new key at once: the loser returns the winner's job
      if (isUniqueViolation(err) && inputs.some((i) => i.idempotencyKey)) {
        rows = await inTransaction(db, (tx) => insert(tx, ctx, tenant, inputs));
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
      const abortedHere = runner.abort(id, 'cancelled');
      if (row.status === 'running' && !abortedHere)
        for (const listener of cancelListeners)
          await listener(ctx, toStatus(updated)).catch((err: unknown) =>
            // the row says cancelled: the handler's result is discarded whatever it does
            logger.warn({ err, jobId: id }, 'could not signal the cancel to the process running the job'),
          );
      if (row.status === 'pending' && row.delivery_id) {
        await driver.cancel(queueOf(row.type), row.delivery_id).catch((err: unknown) =>
          // the worker checks the row before it runs anything, so a late delivery is harmless
          logger.warn({ err, jobId: id }, 'could not withdraw a cancelled delivery'),
        );
      }
      if (row.delivery_id) dispatcher.settled(row.tenant_id, row.type);
      return toStatus(updated);
    },
    onCancelElsewhere(listener) {
      cancelListeners.push(listener);
    },
    abortRunning: (jobId) => runner.abort(jobId, 'cancelled'),
    onFinished(listener) {
      finishListeners.push(listener);
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
      const [row] = await insert(tx, ctx, requireTenant(ctx), [input]);
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

    async stopWorkers(timeoutMs) {
      if (!ready) return 0;
      await ready.catch(() => {});
      return driver.stopWorkers(timeoutMs);
    },

    async stop(timeoutMs) {
      dispatcher.close();
      if (!ready) return;
      await ready.catch(() => {});
      await driver.stop(timeoutMs);
    },
  };
}
