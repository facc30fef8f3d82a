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
  seq: Generated<string>;
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

export interface EventConsumerGroupsTable {
  name: string;
  topics: string[];
  subscribed_at: Timestamp;
}

export interface AppsTable {
  id: Generated<string>;
  tenant_id: string;
  name: string;
  description: string | null;
  created_by: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface PlatformEventsTable {
  seq: Generated<string>;
  id: string;
  tenant_id: string;
  app_id: string | null;
  source: string;
  category: string;
  type: string;
  entity_type: string | null;
  entity_id: string | null;
  data: ColumnType<unknown, string, string>;
  trace_id: string | null;
  idempotency_key: string | null;
  occurred_at: ColumnType<Date, string | Date, string | Date>;
  created_at: Timestamp;
}

export interface AppApiKeysTable {
  api_key_id: string;
  app_id: string;
  tenant_id: string;
  created_at: Timestamp;
}

export interface EventsTables {
  'core.app_api_keys': AppApiKeysTable;
  'core.apps': AppsTable;
  'core.platform_events': PlatformEventsTable;
  'core.events': EventsTable;
  'core.event_outbox': EventOutboxTable;
  'core.event_dead_letters': EventDeadLettersTable;
  'core.event_consumer_groups': EventConsumerGroupsTable;
}
