import { sql } from 'kysely';
import type { Executor } from '../../infra/database/index.js';
import type { Transaction } from '../../infra/database/transaction.js';
import type { EventDriver } from './drivers/event-driver.js';
import type { CloudEvent, OutgoingEvent } from './envelope.js';

/** Rows older than this are a crash's leftovers (their own after-commit step never ran). */
const STALE_MS = 5000;

/**
 * The transactional outbox of engines outside the database (Redis, NATS):
 * events are rows of the caller's transaction, handed to the engine after it
 * commits, and rows a crash left behind are relayed by the scheduler.
 */
export function createOutbox(db: Executor, driver: EventDriver) {
  /** Appends the rows `ids` (or every stale row) to the engine and deletes them, in one transaction. */
  const relay = (ids: number[] | 'stale') =>
    db.transaction().execute(async (trx) => {
      const rows = await sql<{ id: number; topic: string; key: string | null; envelope: CloudEvent }>`
        select id, topic, key, envelope from core.event_outbox
        where ${ids === 'stale' ? sql`created_at < now() - ${STALE_MS} * interval '1 millisecond'` : sql`id = any(${ids})`}
        order by id limit 1000 for update skip locked`.execute(trx);
      if (rows.rows.length === 0) return 0;
      await driver.append(rows.rows.map((r) => ({ topic: r.topic, key: r.key, event: r.envelope })));
      await sql`delete from core.event_outbox where id = any(${rows.rows.map((r) => r.id)})`.execute(trx);
      return rows.rows.length;
    });
  return {
    async write(tx: Transaction, events: OutgoingEvent[]) {
      const rows = await tx.db
        .insertInto('core.event_outbox')
        .values(events.map((e) => ({ topic: e.topic, key: e.key, envelope: JSON.stringify(e.event) })))
        .returning('id')
        .execute();
      const ids = rows.map((r: { id: number }) => Number(r.id));
      tx.afterCommit(async () => {
        await relay(ids);
      });
    },
    relayStale: () => relay('stale'),
  };
}
