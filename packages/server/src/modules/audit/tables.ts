import type { Generated, JSONColumnType } from 'kysely';
import type { Timestamp } from '../../infra/database/columns.js';

export interface AuditEventsTable {
  id: Generated<string>;
  at: Timestamp;
  actor_type: 'user' | 'api_key' | 'system' | 'anonymous';
  actor_id: string | null;
  action: string;
  target_type: string;
  target_id: string | null;
  trace_id: string | null;
  data: JSONColumnType<Record<string, unknown>, string | undefined, string>;
  /** access_token, oidc_token, api_key or signed_url; null for system work (0003). */
  credential: string | null;
  ip: string | null;
  /** The server's own id of the request, never client-chosen (0003). */
  request_id: string | null;
}

/** The audit module's table in each `tenant_{slug}` schema. */
export interface AuditTenantTables {
  audit_events: AuditEventsTable;
}
