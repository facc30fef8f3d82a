import { type Kysely, sql } from 'kysely';
import type { Logger } from 'pino';
import type { Executor } from '../../infra/database/index.js';
import type { SignalChannel } from '../../infra/signals/index.js';
import type { CloudEvent } from '../events/index.js';
import type { RealtimeTables } from './tables.js';

/** One event of the stream log: its place (`seq`, the frame id clients resume from) and its tenant. */
export interface StreamEntry {
  seq: number;
  tenantId: string;
  event: CloudEvent;
}

/** The stream log: appended once per event by whichever instance's bus member got it. */
export interface StreamLog {
  /** Gives the event the next `seq`; an event delivered again (at least once) keeps its first. */
  append(event: CloudEvent & { tenantid: string }): Promise<number | undefined>;
  /** A tenant's entries in (`after`, `upTo`], oldest first. */
  tenantRange(tenantId: string, after: number, upTo: number, limit: number): Promise<StreamEntry[]>;
  /** Every tenant's entries after `after`, oldest first (an instance's tail). */
  tail(after: number, limit: number): Promise<StreamEntry[]>;
  head(): Promise<number>;
  /** The oldest retained seq, or undefined when the log is empty. */
  oldest(): Promise<number | undefined>;
  tenantOf(seq: number): Promise<string | undefined>;
  trim(maxAgeMs: number): Promise<number>;
}

// one lock for the whole log: seq N commits before N+1 is given (see migrations.ts)
const LOG_LOCK = sql`select pg_advisory_xact_lock(hashtext('plexica-realtime-log'))`;

export function createStreamLog(executor: Executor): StreamLog {
  const db = executor as unknown as Kysely<RealtimeTables>;
  const toEntry = (row: { seq: string; tenant_id: string; envelope: CloudEvent }): StreamEntry => ({
    seq: Number(row.seq),
    tenantId: row.tenant_id,
    event: row.envelope,
  });
  return {
    async append(event) {
      return db.transaction().execute(async (trx) => {
        await LOG_LOCK.execute(trx);
        const row = await trx
          .insertInto('core.realtime_log')
          .values({ event_id: event.id, tenant_id: event.tenantid, envelope: JSON.stringify(event) })
          .onConflict((oc) => oc.column('event_id').doNothing())
          .returning('seq')
          .executeTakeFirst();
        return row ? Number(row.seq) : undefined;
      });
    },
    async tenantRange(tenantId, after, upTo, limit) {
      const rows = await db
        .selectFrom('core.realtime_log')
        .select(['seq', 'tenant_id', 'envelope'])
        .where('tenant_id', '=', tenantId)
        .where('seq', '>', String(after) as never)
        .where('seq', '<=', String(upTo) as never)
        .orderBy('seq')
        .limit(limit)
        .execute();
      return rows.map(toEntry);
    },
    async tail(after, limit) {
      const rows = await db
        .selectFrom('core.realtime_log')
        .select(['seq', 'tenant_id', 'envelope'])
        .where('seq', '>', String(after) as never)
        .orderBy('seq')
        .limit(limit)
        .execute();
      return rows.map(toEntry);
    },
    async head() {
      const row = await sql<{
        head: string | null;
      }>`select max(seq)::text as head from core.realtime_log`.execute(db);
      return Number(row.rows[0]?.head ?? 0);
    },
    async oldest() {
      const row = await sql<{
        oldest: string | null;
      }>`select min(seq)::text as oldest from core.realtime_log`.execute(db);
      const value = row.rows[0]?.oldest;
      return value === null || value === undefined ? undefined : Number(value);
    },
    async tenantOf(seq) {
      const row = await db
        .selectFrom('core.realtime_log')
        .select('tenant_id')
        .where('seq', '=', String(seq) as never)
        .executeTakeFirst();
      return row?.tenant_id;
    },
    async trim(maxAgeMs) {
      const result = await sql`delete from core.realtime_log
        where stored_at < now() - ${maxAgeMs} * interval '1 millisecond'`.execute(db);
      return Number(result.numAffectedRows ?? 0n);
    },
  };
}

export const LOG_SIGNAL = 'realtime.log';
const TAIL_PAGE = 1000;

/**
 * An instance's reading of the log, in seq order: woken by the signal the
 * appending instance sends (here at once, elsewhere over the channel), and by
 * a poll for a signal lost while the channel was down. `onEntries` runs in
 * seq order, never two at once, so every local stream sees one order.
 */
export function createLogTail(options: {
  log: StreamLog;
  signals: SignalChannel;
  pollIntervalMs: number;
  logger: Pick<Logger, 'error'>;
  onEntries(entries: StreamEntry[]): void;
}) {
  const { log } = options;
  let head = 0;
  let running: Promise<void> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  const offs: (() => void)[] = [];
  const drain = async () => {
    do {
      again = false;
      for (;;) {
        const read = await log.tail(head, TAIL_PAGE);
        // `offer` may have handed some of them over while the read was out
        const entries = read.filter((e) => e.seq > head);
        if (entries.length > 0) {
          head = entries.at(-1)?.seq ?? head;
          options.onEntries(entries);
        }
        if (read.length < TAIL_PAGE) break;
      }
    } while (again);
  };
  const wake = () => {
    if (running) {
      again = true;
      return;
    }
    running = drain()
      .catch((err: unknown) => options.logger.error({ err }, 'realtime log tail failed'))
      .finally(() => {
        running = undefined;
      });
  };
  return {
    /** The last seq handed to `onEntries`: every entry up to it has been. */
    get head() {
      return head;
    },
    async start() {
      head = await log.head();
      offs.push(options.signals.subscribe(LOG_SIGNAL, wake), options.signals.onResync(wake));
      timer = setInterval(wake, options.pollIntervalMs);
      timer.unref();
    },
    wake,
    /**
     * An entry this instance just appended: handed over at once when it is the next one
     * (no read back), else the tail reads up to it, in order.
     */
    offer(entry: StreamEntry) {
      if (entry.seq === head + 1) {
        head = entry.seq;
        options.onEntries([entry]);
      } else if (entry.seq > head) wake();
    },
    async stop() {
      for (const off of offs.splice(0)) off();
      if (timer) clearInterval(timer);
      await running;
    },
  };
}
