import type { ColumnType, Generated } from 'kysely';
import type { CloudEvent } from '../events/index.js';

export interface RealtimeLogTable {
  seq: ColumnType<string, never, never>;
  event_id: string;
  tenant_id: string;
  envelope: ColumnType<CloudEvent, string, never>;
  stored_at: Generated<Date>;
}

export interface RealtimeTicketsTable {
  id: string;
  sealed: string;
  expires_at: ColumnType<Date, Date, never>;
}

export interface RealtimeTables {
  'core.realtime_log': RealtimeLogTable;
  'core.realtime_tickets': RealtimeTicketsTable;
}
