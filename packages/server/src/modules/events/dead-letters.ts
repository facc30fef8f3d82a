import { type Kysely, type Selectable, sql } from 'kysely';
import type { Executor } from '../../infra/database/index.js';
import { PlexicaError } from '../../infra/errors.js';
import { UUID } from '../../infra/uuid.js';
import type { DriverDelivery, EventDriver } from './drivers/event-driver.js';
import { assertEventType, type CloudEvent, patternsRegex } from './envelope.js';
import type { EventDeadLettersTable, EventsTables } from './tables.js';

/** seed 003: an event a group gave up on, with its original topic, position, error and payload. */
export interface DeadLetter {
  id: string;
  group: string;
  topic: string;
  position: string;
  eventId: string;
  tenantId: string | null;
  error: string;
  attempts: number;
  payload: CloudEvent;
  createdAt: Date;
  redrivenAt: Date | null;
}

export interface DeadLetterFilter {
  group?: string;
  /** Only this tenant's (what a tenant admin may see). */
  tenantId?: string;
  limit?: number;
}

/** What the dead-letter API filters on; newest first, `cursor` continues after a page. */
export interface DeadLetterQuery {
  group?: string;
  /** A topic pattern (`acme.crm.*`) or one topic. */
  topic?: string;
  /** The event's type, exactly. */
  type?: string;
  /** When it was dead-lettered: from, to (inclusive). */
  from?: string;
  to?: string;
  redriven?: boolean;
  cursor?: string;
  limit: number;
}

/** Which dead letters a caller may touch: a tenant's (`tenantId`), or all of them (a super admin). */
export interface DeadLetterScope {
  tenantId?: string;
}

export interface DeadLetterStore {
  add(group: string, delivery: DriverDelivery, error: string): Promise<void>;
  list(filter?: DeadLetterFilter): Promise<DeadLetter[]>;
  /** A page of them, newest first. */
  page(
    scope: DeadLetterScope,
    query: DeadLetterQuery,
  ): Promise<{ data: DeadLetter[]; nextCursor: string | null }>;
  /** @throws PLX_EVENT_DEAD_LETTER_NOT_FOUND, also for another tenant's */
  get(id: string, scope?: DeadLetterScope): Promise<DeadLetter>;
  /**
   * Delivers the event to its group once more (that group only), with fresh attempts.
   * `tenantId` confines it to that tenant's dead letters. Once only: a second re-drive is
   * `PLX_EVENT_DEAD_LETTER_REDRIVEN` (if it fails again, it is a new dead letter).
   */
  redrive(id: string, scope?: DeadLetterScope): Promise<DeadLetter>;
  /** Re-drives each of `ids` once all were found in scope and none was re-driven; in order. */
  redriveMany(ids: string[], scope?: DeadLetterScope): Promise<DeadLetter[]>;
}

type Row = Selectable<EventDeadLettersTable>;

const toDeadLetter = (r: Row): DeadLetter => ({
  id: r.id,
  group: r.group_name,
  topic: r.topic,
  position: r.position,
  eventId: r.event_id,
  tenantId: r.tenant_id,
  error: r.error,
  attempts: r.attempts,
  payload: r.payload,
  createdAt: r.created_at,
  redrivenAt: r.redriven_at,
});

const encodeCursor = (seq: string) => Buffer.from(`d:${seq}`).toString('base64url');
function decodeCursor(cursor: string): string {
  const match = /^d:(\d{1,18})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match?.[1]) throw new PlexicaError('PLX_EVENT_CURSOR_INVALID');
  return match[1];
}

const notFound = (id: string) =>
  new PlexicaError('PLX_EVENT_DEAD_LETTER_NOT_FOUND', { detail: `no dead letter ${id.slice(0, 64)}` });
const alreadyRedriven = (row: Row) =>
  new PlexicaError('PLX_EVENT_DEAD_LETTER_REDRIVEN', {
    detail: `dead letter ${row.id} was re-driven at ${row.redriven_at?.toISOString()}`,
  });

/** Dead letters live in the database whatever the engine, so they are inspected the same way. */
export function createDeadLetterStore(executor: Executor, driver: EventDriver): DeadLetterStore {
  const db: Kysely<EventsTables> = executor;
  const table = 'core.event_dead_letters';
  const find = async (id: string, scope: DeadLetterScope) => {
    if (!UUID.test(id)) throw notFound(id);
    let query = db.selectFrom(table).selectAll().where('id', '=', id);
    if (scope.tenantId !== undefined) query = query.where('tenant_id', '=', scope.tenantId);
    const row = await query.executeTakeFirst();
    if (!row) throw notFound(id);
    return row;
  };
  const redrive = async (id: string, scope: DeadLetterScope) => {
    const row = await find(id, scope);
    // claimed first, so two re-drives at once deliver it once; handed back if the engine refuses
    const claimed = await db
      .updateTable(table)
      .set({ redriven_at: sql`now()` })
      .where('id', '=', row.id)
      .where('redriven_at', 'is', null)
      .returningAll()
      .executeTakeFirst();
    if (!claimed) throw alreadyRedriven(await find(id, scope));
    try {
      await driver.append([
        { topic: row.topic, key: row.key, event: { ...row.payload, plexicaredrive: row.group_name } },
      ]);
    } catch (err) {
      await db.updateTable(table).set({ redriven_at: null }).where('id', '=', row.id).execute();
      throw err;
    }
    return toDeadLetter(claimed);
  };
  return {
    async add(group, d, error) {
      const { plexicaredrive: _, ...payload } = d.event;
      await db
        .insertInto(table)
        .values({
          group_name: group,
          topic: d.topic,
          position: d.position,
          event_id: d.event.id,
          tenant_id: d.event.tenantid ?? null,
          key: d.key,
          error: error.slice(0, 4000),
          attempts: d.attempt,
          payload: JSON.stringify(payload),
        })
        .execute();
    },
    async list(filter = {}) {
      let query = db.selectFrom(table).selectAll();
      if (filter.group) query = query.where('group_name', '=', filter.group);
      if (filter.tenantId) query = query.where('tenant_id', '=', filter.tenantId);
      const rows = await query
        .orderBy('created_at', 'desc')
        .orderBy('id')
        .limit(filter.limit ?? 100)
        .execute();
      return rows.map(toDeadLetter);
    },
    async page(scope, q) {
      if (q.type !== undefined) assertEventType(q.type);
      const topicRegex = q.topic !== undefined ? patternsRegex([q.topic]) : undefined;
      if (q.from && q.to && Date.parse(q.from) > Date.parse(q.to))
        throw new PlexicaError('PLX_EVENT_FILTER_NEVER_MATCHES', { detail: 'from is after to' });
      let query = db.selectFrom(table).selectAll();
      if (scope.tenantId !== undefined) query = query.where('tenant_id', '=', scope.tenantId);
      if (q.group !== undefined) query = query.where('group_name', '=', q.group);
      if (topicRegex) query = query.where(sql<boolean>`topic ~ ${topicRegex}`);
      if (q.type !== undefined) query = query.where(sql<boolean>`payload->>'type' = ${q.type}`);
      if (q.from) query = query.where('created_at', '>=', new Date(q.from));
      if (q.to) query = query.where('created_at', '<=', new Date(q.to));
      if (q.redriven !== undefined) query = query.where('redriven_at', q.redriven ? 'is not' : 'is', null);
      if (q.cursor) query = query.where('seq', '<', decodeCursor(q.cursor));
      const rows = await query
        .orderBy('seq', 'desc')
        .limit(q.limit + 1)
        .execute();
      const page = rows.slice(0, q.limit);
      const last = page.at(-1);
      return {
        data: page.map(toDeadLetter),
        nextCursor: rows.length > q.limit && last ? encodeCursor(String(last.seq)) : null,
      };
    },
    get: async (id, scope = {}) => toDeadLetter(await find(id, scope)),
    redrive: (id, scope = {}) => redrive(id, scope),
    async redriveMany(ids, scope = {}) {
      // all or none refused up front: a typo in the selection re-drives nothing
      const unique = [...new Set(ids)];
      const rows = await Promise.all(unique.map((id) => find(id, scope)));
      const done = rows.find((r) => r.redriven_at !== null);
      if (done) throw alreadyRedriven(done);
      const redriven: DeadLetter[] = [];
      for (const id of unique) redriven.push(await redrive(id, scope));
      return redriven;
    },
  };
}
