import { randomUUID } from 'node:crypto';
import { type Kysely, type Selectable, sql } from 'kysely';
import type { Logger } from 'pino';
import type { Executor } from '../../infra/database/index.js';
import type { Definition } from './definitions.js';
import type { QueueDriver } from './drivers/queue-driver.js';
import { byQueue, deliveryOf } from './runner.js';
import type { JobsTable, JobsTables } from './tables.js';
import { createDispatchWindow, type TenantType } from './window.js';

type Row = Selectable<JobsTable>;

/**
 * How stored jobs reach the engine. Two ways, chosen once from the driver's
 * capabilities:
 * - an engine that can join our transaction (`sendIn`: pg-boss in the same
 *   database) gets each job's delivery in the transaction that inserts it;
 * - any other engine (BullMQ) gets a tenant's jobs through the dispatch window
 *   after the commit, at most a window per tenant and type (window.ts), so one
 *   tenant's flood waits in `core.jobs` instead of in front of other tenants.
 */
export interface Dispatcher {
  /** The delivery id to insert a new row with: made now when the delivery joins the transaction. */
  newDeliveryId(): string | null;
  /** In the inserting transaction: deliveries that commit with the rows (transactional engines). */
  inTransaction(trx: Executor, rows: Row[]): Promise<void>;
  /** After the commit: delivers what the transaction could not, and wakes local workers. */
  afterCommit(rows: Row[]): Promise<void>;
  /** A job of `tenantId` and `type` ended or was withdrawn: its window has room for another. */
  settled(tenantId: string, type: string): void;
  /** Re-delivers what a crash left undelivered for more than `olderThanMs`. @returns rows handled */
  sweep(olderThanMs: number, prepare: (types: Iterable<string>) => Promise<void>): Promise<number>;
  close(): void;
}

export function createDispatcher(options: {
  db: Kysely<JobsTables>;
  driver: QueueDriver;
  definitions: Map<string, Definition>;
  logger: Logger;
}): Dispatcher {
  const { db, driver, definitions, logger } = options;
  const sendIn = driver.sendIn?.bind(driver);
  const dispatchWindow = sendIn ? undefined : createDispatchWindow({ db, driver, definitions, logger });
  const pump = async (pairs: TenantType[]) => {
    try {
      await dispatchWindow?.pump(pairs);
    } catch (err) {
      logger.error({ err }, 'could not hand jobs to the engine; the sweep retries');
    }
  };

  /**
   * Hands rows to a transactional engine, one call per queue: in the rows' own
   * transaction with the delivery ids they were inserted with, or, for rows the
   * sweep found without one, after the fact, recording the ids afterwards.
   */
  const dispatch = async (executor: Executor, rows: Row[], inTransaction: boolean) => {
    const deliveries = rows.map((row) =>
      deliveryOf(row, definitions.get(row.type), row.delivery_id ?? undefined),
    );
    for (const [queue, group] of byQueue(rows)) {
      const ids = new Set(group.map((row) => row.id));
      const batch = deliveries.filter((d) => ids.has(d.jobId));
      if (inTransaction && sendIn) await sendIn(executor, queue, batch);
      else await driver.send(queue, batch);
    }
    // rows inserted with their delivery id (transactional engines) need nothing more
    if (rows.some((row) => !row.delivery_id)) {
      await sql`
        update core.jobs as j set delivery_id = d.id
        from jsonb_to_recordset(${JSON.stringify(deliveries)}::jsonb) as d(id text, "jobId" uuid)
        where j.id = d."jobId" and j.delivery_id is null`.execute(executor);
    }
  };

  const afterCommit = async (rows: Row[]) => {
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
        await dispatch(db, undelivered, false);
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

  return {
    newDeliveryId: () => (sendIn ? randomUUID() : null),
    async inTransaction(trx, rows) {
      if (sendIn) await dispatch(trx, rows, true);
    },
    afterCommit,
    settled(tenantId, type) {
      if (dispatchWindow) void pump([{ tenantId, type }]);
    },
    async sweep(olderThanMs, prepare) {
      if (dispatchWindow) {
        await prepare(definitions.keys());
        return (await dispatchWindow.resendStale(olderThanMs)) + (await dispatchWindow.pumpDue());
      }
      const stale = await db
        .selectFrom('core.jobs')
        .selectAll()
        .where('status', '=', 'pending')
        .where('delivery_id', 'is', null)
        // updated_at: a job just re-driven by `retry` is being dispatched right now;
        // the database's clock, not ours: instances and the database may disagree by a few ms
        .where('updated_at', '<', sql<Date>`now() - make_interval(secs => ${olderThanMs / 1000})`)
        .limit(1000)
        .execute();
      if (stale.length === 0) return 0;
      await prepare(new Set(stale.map((r) => r.type)));
      await afterCommit(stale);
      return stale.length;
    },
    close() {
      dispatchWindow?.close();
    },
  };
}
