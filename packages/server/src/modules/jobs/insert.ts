import type { Insertable, Kysely, Selectable } from 'kysely';
import type { RequestContext, TenantRef } from '../../context.js';
import { type Executor, prepareQuery } from '../../infra/database/index.js';
import type { Transaction } from '../../infra/database/transaction.js';
import type { AuditService } from '../audit/index.js';
import { checkInput, type Definition } from './definitions.js';
import type { Dispatcher } from './dispatch.js';
import type { EnqueueInput } from './service.js';
import type { JobsTable, JobsTables } from './tables.js';

type JobRow = Insertable<JobsTable>;

/**
 * The insert of one job (what POST /api/v1/jobs does), planned once per
 * connection; bulk inserts stay one statement of their own size.
 */
export function oneJobInsert(db: Kysely<JobsTables>) {
  return prepareQuery(
    'jobs.insert_one',
    (
      tenantId: JobRow['tenant_id'],
      type: JobRow['type'],
      data: JobRow['data'],
      priority: JobRow['priority'],
      maxAttempts: JobRow['max_attempts'],
      idempotencyKey: JobRow['idempotency_key'],
      traceId: JobRow['trace_id'],
      runAt: JobRow['run_at'],
      deliveryId: JobRow['delivery_id'],
    ) =>
      db
        .insertInto('core.jobs')
        .values({
          tenant_id: tenantId,
          type,
          data,
          priority,
          max_attempts: maxAttempts,
          idempotency_key: idempotencyKey,
          trace_id: traceId,
          run_at: runAt,
          delivery_id: deliveryId,
        })
        .returningAll(),
  );
}

/**
 * Inserts the jobs in `tx` in one statement (and their deliveries in one
 * per queue); an idempotency key seen before returns the first job.
 * @returns a row per input, in input order
 */
export async function insertJobs(
  tx: Transaction<JobsTables>,
  ctx: RequestContext,
  tenant: TenantRef,
  inputs: EnqueueInput[],
  deps: {
    definitions: ReadonlyMap<string, Definition>;
    dispatcher: Dispatcher;
    audit?: AuditService;
    /** `oneJobInsert`, made once by the service. */
    insertOne: ReturnType<typeof oneJobInsert>;
  },
): Promise<Selectable<JobsTable>[]> {
  const { definitions, dispatcher, audit, insertOne } = deps;
  const trx = tx.db;
  const checked = inputs.map((input, index) => ({
    input,
    ...checkInput(definitions, input, inputs.length > 1 ? index : undefined),
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
  const rows = fresh.map(({ input, definition, data, runAt }) => ({
    tenant_id: tenant.id,
    type: input.type,
    data: JSON.stringify(data),
    priority: input.priority ?? 0,
    max_attempts: input.maxAttempts ?? definition.maxAttempts,
    idempotency_key: input.idempotencyKey ?? null,
    trace_id: ctx.traceId,
    run_at: runAt,
    delivery_id: dispatcher.newDeliveryId(),
  }));
  let inserted: Selectable<JobsTable>[] = [];
  if (rows.length === 1 && rows[0]) {
    const r = rows[0];
    inserted = await insertOne.execute(
      trx as Executor,
      r.tenant_id,
      r.type,
      r.data,
      r.priority,
      r.max_attempts,
      r.idempotency_key,
      r.trace_id,
      r.run_at,
      r.delivery_id,
    );
  } else if (rows.length > 1) {
    inserted = await trx.insertInto('core.jobs').values(rows).returningAll().execute();
  }
  await dispatcher.inTransaction(trx, inserted);
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
      tx,
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
}
