import { type Kysely, type Selectable, sql } from 'kysely';
import type { Executor } from '../../infra/database/index.js';
import { PlexicaError } from '../../infra/errors.js';
import { UUID } from '../../infra/uuid.js';
import type { DriverDelivery, EventDriver } from './drivers/event-driver.js';
import type { CloudEvent } from './envelope.js';
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

export interface DeadLetterStore {
  add(group: string, delivery: DriverDelivery, error: string): Promise<void>;
  list(filter?: DeadLetterFilter): Promise<DeadLetter[]>;
  /**
   * Delivers the event to its group once more (that group only), with fresh attempts.
   * `tenantId` confines it to that tenant's dead letters.
   */
  redrive(id: string, scope?: { tenantId?: string }): Promise<DeadLetter>;
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

/** Dead letters live in the database whatever the engine, so they are inspected the same way. */
export function createDeadLetterStore(executor: Executor, driver: EventDriver): DeadLetterStore {
  const db: Kysely<EventsTables> = executor;
  const table = 'core.event_dead_letters';
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
    async redrive(id, scope = {}) {
      const notFound = new PlexicaError('PLX_EVENT_DEAD_LETTER_NOT_FOUND');
      if (!UUID.test(id)) throw notFound;
      const row = await db.selectFrom(table).selectAll().where('id', '=', id).executeTakeFirst();
      if (!row || (scope.tenantId !== undefined && row.tenant_id !== scope.tenantId)) throw notFound;
      await driver.append([
        { topic: row.topic, key: row.key, event: { ...row.payload, plexicaredrive: row.group_name } },
      ]);
      const updated = await db
        .updateTable(table)
        .set({ redriven_at: sql`now()` })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      return toDeadLetter(updated);
    },
  };
}
