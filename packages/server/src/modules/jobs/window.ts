import { type Kysely, type Selectable, sql } from 'kysely';
import type { Logger } from 'pino';
import { createBatcher } from '../../infra/batcher.js';
import type { Definition } from './definitions.js';
import type { QueueDriver } from './drivers/queue-driver.js';
import { byQueue, deliveryOf } from './runner.js';
import type { JobsTable, JobsTables } from './tables.js';

/** A tenant's jobs of one type. */
export interface TenantType {
  tenantId: string;
  type: string;
}

/** The engine holds at most this many times a type's `tenantConcurrency` of one tenant's jobs. */
const WINDOW_FACTOR = 2;
/** setTimeout's longest delay; a later due time is looked at again then. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface DispatchWindow {
  /** Hands due jobs of these tenants and types to the engine, as far as their windows allow. */
  pump(pairs: TenantType[]): Promise<void>;
  /** Pumps every tenant and type with due jobs waiting, and arms a timer for the next delayed one. */
  pumpDue(): Promise<number>;
  /** Looks again when a job becomes due at `runAt`. */
  dueAt(runAt: Date): void;
  /**
   * Sends again deliveries claimed more than `olderThanMs` ago whose job has not
   * started: a crash between claim and send left them unsent. The engine takes a
   * delivery id once, so one that did arrive is not delivered twice.
   */
  resendStale(olderThanMs: number): Promise<number>;
  close(): void;
}

/**
 * Dispatch for an engine that cannot join our transaction (BullMQ). Jobs wait
 * in `core.jobs` and reach the engine a window per tenant and type at a time
 * (twice its `tenantConcurrency`); a job that ends makes room for the next one
 * of its tenant. The engine's queue is FIFO: without the window, a tenant that
 * enqueues 100,000 jobs would stand them all in front of another tenant's one.
 *
 * A delivery is claimed (its id written) before it is sent, so two pumps never
 * send one job twice; a crash between the two is repaired by `resendStale`.
 */
export function createDispatchWindow(options: {
  db: Kysely<JobsTables>;
  driver: QueueDriver;
  definitions: Map<string, Definition>;
  logger: Logger;
}): DispatchWindow {
  const { db, driver, definitions, logger } = options;

  const send = async (rows: Selectable<JobsTable>[]) => {
    for (const [queue, group] of byQueue(rows)) {
      await driver.send(
        queue,
        group.map((row) => deliveryOf(row, definitions.get(row.type), row.delivery_id!)),
      );
    }
  };

  // one statement per tick for every tenant and type that made room or got jobs;
  // never two at once, so two pumps do not both fill the same window
  const pumpBatch = createBatcher(
    async (pairs: TenantType[]) => {
      const unique = new Map(pairs.map((p) => [`${p.tenantId}/${p.type}`, p]));
      const wanted = [...unique.values()].map((p) => ({
        tenant_id: p.tenantId,
        type: p.type,
        size: WINDOW_FACTOR * (definitions.get(p.type)?.tenantConcurrency ?? 1),
      }));
      const { rows } = await sql<Selectable<JobsTable>>`
        with wanted as (
          select * from jsonb_to_recordset(${JSON.stringify(wanted)}::jsonb)
            as w(tenant_id uuid, type text, size integer)
        ), picked as (
          select next.id from wanted cross join lateral (
            select j.id from core.jobs as j
            where j.tenant_id = wanted.tenant_id and j.type = wanted.type
              and j.status = 'pending' and j.delivery_id is null and j.run_at <= now()
            order by j.priority desc, j.run_at, j.created_at
            limit greatest(0, wanted.size - (
              select count(*) from core.jobs as f
              where f.tenant_id = wanted.tenant_id and f.type = wanted.type
                and f.status in ('pending', 'running') and f.delivery_id is not null))
          ) as next
        )
        update core.jobs as j set delivery_id = gen_random_uuid()::text, updated_at = now()
        from picked where j.id = picked.id and j.delivery_id is null
        returning j.*`.execute(db);
      if (rows.length > 0) {
        // claimed but not sent (engine down): `resendStale` sends them later
        await send(rows).catch((err: unknown) =>
          logger.error({ err, jobs: rows.length }, 'could not hand jobs to the engine; the sweep retries'),
        );
      }
      return pairs.map(() => undefined);
    },
    { maxBatch: 500 },
  );

  let timer: NodeJS.Timeout | undefined;
  let timerAt = Number.POSITIVE_INFINITY;
  let closed = false;

  const dueAt = (runAt: Date) => {
    const at = runAt.getTime();
    if (closed || at >= timerAt) return;
    clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(
      () => {
        timer = undefined;
        timerAt = Number.POSITIVE_INFINITY;
        pumpDue().catch((err: unknown) => logger.error({ err }, 'could not hand due jobs to the engine'));
      },
      Math.min(Math.max(0, at - Date.now()), MAX_TIMER_MS),
    );
    timer.unref();
  };

  const pumpDue = async () => {
    const due = await db
      .selectFrom('core.jobs')
      .select(['tenant_id', 'type'])
      .distinct()
      .where('status', '=', 'pending')
      .where('delivery_id', 'is', null)
      .where('run_at', '<=', sql<Date>`now()`)
      .limit(1000)
      .execute();
    await Promise.all(due.map((row) => pumpBatch({ tenantId: row.tenant_id, type: row.type })));
    const next = await db
      .selectFrom('core.jobs')
      .select((eb) => eb.fn.min('run_at').as('at'))
      .where('status', '=', 'pending')
      .where('delivery_id', 'is', null)
      .where('run_at', '>', sql<Date>`now()`)
      .executeTakeFirst();
    if (next?.at) dueAt(new Date(next.at));
    return due.length;
  };

  return {
    pump: async (pairs) => {
      await Promise.all(pairs.map((pair) => pumpBatch(pair)));
    },
    pumpDue,
    dueAt,
    async resendStale(olderThanMs) {
      const stale = await db
        .selectFrom('core.jobs')
        .selectAll()
        .where('status', '=', 'pending')
        .where('delivery_id', 'is not', null)
        .where('started_at', 'is', null)
        .where('updated_at', '<', sql<Date>`now() - make_interval(secs => ${olderThanMs / 1000})`)
        .limit(1000)
        .execute();
      if (stale.length > 0) await send(stale);
      return stale.length;
    },
    close() {
      closed = true;
      clearTimeout(timer);
    },
  };
}
