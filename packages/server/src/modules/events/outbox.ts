import { sql } from 'kysely';
import type { Logger } from 'pino';
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
export function createOutbox(db: Executor, driver: EventDriver, logger: Pick<Logger, 'warn'>) {
  /** Appends every stale row (a crash's leftovers) to the engine and deletes them, in one transaction. */
  const relayStale = () =>
    db.transaction().execute(async (trx) => {
      const rows = await sql<{ id: number; topic: string; key: string | null; envelope: CloudEvent }>`
        select id, topic, key, envelope from core.event_outbox
        where created_at < now() - ${STALE_MS} * interval '1 millisecond'
        order by id limit 1000 for update skip locked`.execute(trx);
      if (rows.rows.length === 0) return 0;
      await driver.append(rows.rows.map((r) => ({ topic: r.topic, key: r.key, event: r.envelope })));
      await sql`delete from core.event_outbox where id = any(${rows.rows.map((r) => r.id)})`.execute(trx);
      return rows.rows.length;
    });
  // one hand-over per transaction, however many events it published
  const pendingOf = new WeakMap<Transaction, { ids: number[]; events: OutgoingEvent[] }>();
  return {
    async write(tx: Transaction, events: OutgoingEvent[]) {
      const rows = await tx.db
        .insertInto('core.event_outbox')
        .values(events.map((e) => ({ topic: e.topic, key: e.key, envelope: JSON.stringify(e.event) })))
        .returning('id')
        .execute();
      const ids = rows.map((r: { id: number }) => Number(r.id));
      const pending = pendingOf.get(tx);
      if (pending) {
        pending.ids.push(...ids);
        pending.events.push(...events);
        return;
      }
      const mine = { ids, events: [...events] };
      pendingOf.set(tx, mine);
      tx.afterCommit(async () => {
        // the events are in hand: appended, then their rows dropped (one statement, no second
        // transaction); a crash or a failed append in between leaves the rows to the sweep,
        // which appends them again (at least once; NATS drops the repeat by event id). The
        // caller's change has committed with its events: an engine that is down is not its error.
        try {
          await driver.append(mine.events);
          await sql`delete from core.event_outbox where id = any(${mine.ids})`.execute(db);
        } catch (err) {
          logger.warn(
            { err, events: mine.ids.length },
            'events stay in the outbox until the engine takes them',
          );
        }
      });
    },
    relayStale,
  };
}
