import type { ColumnType, Generated, JSONColumnType } from 'kysely';
import type { TenantSettings, TenantStatus } from '../../context.js';
import type { NullableTimestamp, Timestamp } from '../../infra/database/columns.js';

export interface TenantsTable {
  id: Generated<string>;
  slug: string;
  name: string;
  status: ColumnType<TenantStatus, TenantStatus | undefined, TenantStatus>;
  settings: JSONColumnType<TenantSettings, string | undefined, string>;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleted_at: NullableTimestamp;
  purge_after: NullableTimestamp;
  /** Set at each suspension: IdP tokens issued before it are refused. */
  tokens_not_before: NullableTimestamp;
}

/** The tenants module's tables in `core`. */
export interface TenantsTables {
  'core.tenants': TenantsTable;
}
