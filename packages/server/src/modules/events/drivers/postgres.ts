import { EventEmitter } from 'node:events';
import { sql } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import { createBatcher } from '../../../infra/batcher.js';
import type { Executor } from '../../../infra/database/index.js';
import { PlexicaError } from '../../../infra/errors.js';
import { type CloudEvent, type OutgoingEvent, patternsRegex } from '../envelope.js';
import type { ConsumerSpec, Consumption, DriverDelivery, EventDriver, SeekPoint } from './event-driver.js';

export interface PostgresEventDriverOptions {
  db: Executor;
  logger: Pick<Logger, 'warn'>;
  /** Set on PostgreSQL: a connection of its own LISTENs, so other processes' events wake consumers at once. */
  listenUrl: string | undefined;
  /** How often idle consumers look for events when nothing woke them. */
  pollIntervalMs: number;
}

const CHANNEL = 'plexica_events';
/** Log rows examined per group per fetch; matching ones become the group's deliveries. */
const FETCH_LIMIT = 1000;

/**
 * The event log in the database (PGlite embedded, or PostgreSQL): `core.events`
 * is appended to in the caller's transaction (the outbox is the log itself);
 * each group moves what it matches into `core.event_deliveries` under a cursor,
 * and members claim due deliveries with SKIP LOCKED.
 */
export async function createPostgresEventDriver(options: PostgresEventDriverOptions): Promise<EventDriver> {
  const { db, logger } = options;
  const wake = new EventEmitter();
  wake.setMaxListeners(0);
  let listener: pg.Client | undefined;
  if (options.listenUrl) {
    const client = new pg.Client({ connectionString: options.listenUrl });
    client.on('error', (err) => logger.warn({ err: err.message }, 'event bus LISTEN connection failed'));
    client.on('notification', () => wake.emit('wake'));
    await client.connect();
    await client.query(`listen ${CHANNEL}`);
    listener = client;
  }

  // one NOTIFY per transaction is enough to wake every listener at its commit
  const notified = new WeakSet<Executor>();
  const insert = async (executor: Executor, events: OutgoingEvent[]) => {
    if (events.length === 0) return;
    await executor
      .insertInto('core.events')
      .values(
        events.map((e) => ({
          id: e.event.id,
          topic: e.topic,
          type: e.event.type,
          tenant_id: e.event.tenantid ?? null,
          key: e.key,
          time: e.event.time,
          envelope: JSON.stringify(e.event),
        })),
      )
      .execute();
    // delivered at commit (or now, outside a transaction); other processes wake on it
    if (options.listenUrl && !(executor !== db && notified.has(executor))) {
      await sql`select pg_notify(${CHANNEL}, '')`.execute(executor);
      if (executor !== db) notified.add(executor);
    }
  };

  const ensureGroup = async (spec: ConsumerSpec) => {
    const pattern = patternsRegex(spec.patterns);
    // latest: whatever commits from now on (the oldest running transaction and after)
    const start =
      spec.from === 'earliest' ? sql`'0'::xid8, 0` : sql`pg_snapshot_xmin(pg_current_snapshot()), 0`;
    await sql`insert into core.event_groups (name, pattern, cursor_tx, cursor_position)
      select ${spec.group}, ${pattern}, ${start}
      on conflict (name) do update set pattern = excluded.pattern`.execute(db);
  };

  /** Moves the group's cursor over the log, making deliveries of what it matches; one member at a time. */
  /** @returns whether committed events wait behind a transaction still running (look again soon) */
  const fetch = (group: string) =>
    db.transaction().execute(async (trx) => {
      const lock = await sql<{
        locked: boolean;
      }>`select pg_try_advisory_xact_lock(hashtext(${`plexica-events:${group}`})) as locked`.execute(trx);
      if (!lock.rows[0]?.locked) return false;
      await sql`with g as (
          select cursor_tx, cursor_position, pattern from core.event_groups where name = ${group}
        ), scanned as (
          select e.position, e.tx, e.key, e.topic ~ g.pattern as matches from core.events e, g
          where (e.tx, e.position) > (g.cursor_tx, g.cursor_position)
            and e.tx < pg_snapshot_xmin(pg_current_snapshot())
          order by e.tx, e.position limit ${FETCH_LIMIT}
        ), made as (
          insert into core.event_deliveries (group_name, position, key)
          select ${group}, position, key from scanned where matches order by tx, position
          on conflict do nothing
        )
        update core.event_groups set (cursor_tx, cursor_position) =
          (select tx, position from scanned order by tx desc, position desc limit 1)
        where name = ${group} and exists (select 1 from scanned)`.execute(trx);
      const held = await sql<{ held: boolean }>`select exists (
          select 1 from core.events e, core.event_groups g
          where g.name = ${group} and (e.tx, e.position) > (g.cursor_tx, g.cursor_position)
        ) as held`.execute(trx);
      return held.rows[0]?.held === true;
    });

  const claim = async (
    spec: ConsumerSpec,
    ack: (position: string) => Promise<void>,
  ): Promise<DriverDelivery[]> => {
    const { rows } = await sql<{
      position: string;
      attempts: number;
      key: string | null;
      topic: string;
      envelope: CloudEvent;
    }>`with due as (
        select d.group_name, d.position, d.seq from core.event_deliveries d
        where d.group_name = ${spec.group} and d.visible_at <= now()
          and (d.key is null or not exists (
            select 1 from core.event_deliveries o
            where o.group_name = d.group_name and o.key = d.key and o.seq < d.seq))
        order by d.seq limit ${spec.batchSize}
        for update skip locked
      ), claimed as (
        update core.event_deliveries d
        set attempts = d.attempts + 1, visible_at = now() + ${spec.ackTimeoutMs} * interval '1 millisecond'
        from due where d.group_name = due.group_name and d.position = due.position
        returning d.position, d.attempts, d.key, due.seq
      )
      select c.position::text as position, c.attempts, c.key, e.topic, e.envelope
      from claimed c join core.events e on e.position = c.position order by c.seq`.execute(db);
    return rows.map((row) => ({
      position: row.position,
      topic: row.topic,
      key: row.key,
      event: row.envelope,
      attempt: row.attempts,
      ack: () => ack(row.position),
      nack: async (delayMs) => {
        await sql`update core.event_deliveries set visible_at = now() + ${delayMs} * interval '1 millisecond'
          where group_name = ${spec.group} and position = ${row.position}::bigint`.execute(db);
      },
    }));
  };

  return {
    append: async (events) => {
      await insert(db, events);
      wake.emit('wake');
    },
    appendIn: async (tx, events) => {
      await insert(tx.db, events);
      tx.afterCommit(async () => {
        wake.emit('wake');
      });
    },
    async consume(spec, onBatch): Promise<Consumption> {
      await ensureGroup(spec);
      // acks that arrive together (a batch's handlers ending at once) are one statement
      const ack = createBatcher(
        async (positions: string[]) => {
          await sql`delete from core.event_deliveries
            where group_name = ${spec.group} and position = any(${positions}::bigint[])`.execute(db);
          return positions.map(() => undefined);
        },
        { maxBatch: 1000 },
      );
      let running = true;
      let sleeping: (() => void) | undefined;
      // a wake-up during a round (between its fetch and its sleep) makes the next round start at once
      let woken = false;
      const onWake = () => {
        woken = true;
        sleeping?.();
      };
      wake.on('wake', onWake);
      const loop = (async () => {
        while (running) {
          woken = false;
          let held = false;
          try {
            held = await fetch(spec.group);
            const batch = await claim(spec, ack);
            if (batch.length > 0) {
              await onBatch(batch);
              continue;
            }
          } catch (err) {
            logger.warn({ err, group: spec.group }, 'event consumer round failed; retried');
          }
          if (!running) break;
          if (woken) continue;
          await new Promise<void>((resolve) => {
            // events behind an older transaction still running: they are readable as soon as it ends
            const timer = setTimeout(resolve, held ? 5 : options.pollIntervalMs);
            sleeping = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          sleeping = undefined;
        }
      })();
      return {
        async stop() {
          running = false;
          wake.off('wake', onWake);
          sleeping?.();
          await loop;
        },
      };
    },
    async seek(spec, point: SeekPoint) {
      await ensureGroup(spec);
      const target =
        'position' in point
          ? await sql<{
              tx: string;
              position: string;
            }>`select tx::text as tx, (position - 1)::text as position
              from core.events where position = ${/^\d{1,19}$/.test(point.position) ? point.position : '0'}::bigint`.execute(
              db,
            )
          : await sql<{
              tx: string;
              position: string;
            }>`select tx::text as tx, (position - 1)::text as position
              from core.events where time >= ${point.time} order by tx, position limit 1`.execute(db);
      const row = target.rows[0];
      if (!row) {
        if ('position' in point)
          throw new PlexicaError('PLX_EVENT_POSITION_UNKNOWN', {
            detail: `no retained event at position ${point.position}`,
          });
        // nothing since that time: the group continues with what comes next
        await sql`update core.event_groups set (cursor_tx, cursor_position) =
          (select pg_snapshot_xmin(pg_current_snapshot()), 0) where name = ${spec.group}`.execute(db);
        return;
      }
      await sql`update core.event_groups set cursor_tx = ${row.tx}::xid8, cursor_position = ${row.position}::bigint
        where name = ${spec.group}`.execute(db);
      wake.emit('wake');
    },
    async deleteGroup(group) {
      // its deliveries go with it (on delete cascade)
      await sql`delete from core.event_groups where name = ${group}`.execute(db);
    },
    async lag(group) {
      const { rows } = await sql<{ lag: number }>`select
          (select count(*) from core.event_deliveries where group_name = ${group})
          + (select count(*) from core.events e, core.event_groups g
             where g.name = ${group} and (e.tx, e.position) > (g.cursor_tx, g.cursor_position)
               and e.topic ~ g.pattern) as lag`.execute(db);
      return Number(rows[0]?.lag ?? 0);
    },
    async ping() {
      const started = performance.now();
      await sql`select 1`.execute(db);
      return performance.now() - started;
    },
    async trim({ maxAgeMs, maxEvents }) {
      const old = await sql`delete from core.events
        where stored_at < now() - ${maxAgeMs} * interval '1 millisecond'`.execute(db);
      const over = await sql`delete from core.events
        where position <= (select max(position) - ${maxEvents} from core.events)`.execute(db);
      return Number(old.numAffectedRows ?? 0n) + Number(over.numAffectedRows ?? 0n);
    },
    async close() {
      wake.emit('wake');
      await listener?.end();
    },
  };
}
