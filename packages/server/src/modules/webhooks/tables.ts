import type { ColumnType, Generated } from 'kysely';
import type { NullableTimestamp, Timestamp } from '../../infra/database/columns.js';

export interface WebhookEndpointsTable {
  id: Generated<string>;
  tenant_id: string;
  app_id: string | null;
  url: string;
  description: string | null;
  event_types: string[];
  secret_id: string;
  previous_secret_id: string | null;
  previous_secret_until: NullableTimestamp;
  status: ColumnType<'active' | 'disabled', 'active' | 'disabled' | undefined, 'active' | 'disabled'>;
  disabled_reason: string | null;
  consecutive_failures: ColumnType<number, number | undefined, number>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface WebhookDeliveriesTable {
  id: Generated<string>;
  endpoint_id: string;
  tenant_id: string;
  event_id: string;
  event_type: string;
  payload: ColumnType<unknown, string, string>;
  status: ColumnType<
    'pending' | 'succeeded' | 'failed',
    'pending' | undefined,
    'pending' | 'succeeded' | 'failed'
  >;
  attempts: ColumnType<number, number | undefined, number>;
  next_attempt_at: NullableTimestamp;
  last_status: number | null;
  redelivery_of: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface WebhookAttemptsTable {
  id: Generated<string>;
  delivery_id: string;
  attempt: number;
  request_headers: ColumnType<Record<string, string>, string, string>;
  response_status: number | null;
  response_body: string | null;
  latency_ms: number;
  error: string | null;
  created_at: Timestamp;
}

export interface WebhooksTables {
  'core.webhook_endpoints': WebhookEndpointsTable;
  'core.webhook_deliveries': WebhookDeliveriesTable;
  'core.webhook_attempts': WebhookAttemptsTable;
}
