import type { ColumnType, Generated } from 'kysely';
import type { NullableTimestamp, Timestamp } from '../../infra/database/columns.js';
import type { CloudEvent } from './envelope.js';

type Json<T> = ColumnType<T, string, string>;

/** The postgres driver's log (the driver writes and reads it with SQL of its own). */
export interface EventsTable {
  position: Generated<string>;
  id: string;
  topic: string;
  type: string;
  tenant_id: string | null;
  key: string | null;
  time: ColumnType<Date, string, string>;
  envelope: Json<CloudEvent>;
}

export interface EventOutboxTable {
  id: Generated<number>;
  topic: string;
  key: string | null;
  envelope: Json<CloudEvent>;
  created_at: Timestamp;
}

export interface EventDeadLettersTable {
  id: Generated<string>;
  group_name: string;
  topic: string;
  position: string;
  event_id: string;
  tenant_id: string | null;
  key: string | null;
  error: string;
  attempts: number;
  payload: Json<CloudEvent>;
  created_at: Timestamp;
  redriven_at: NullableTimestamp;
}

export interface EventsTables {
  'core.events': EventsTable;
  'core.event_outbox': EventOutboxTable;
  'core.event_dead_letters': EventDeadLettersTable;
}
