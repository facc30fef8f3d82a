import type { ColumnType, Generated, JSONColumnType } from 'kysely';

/** Kysely row types of the `core` schema and of a `tenant_{slug}` schema. */

type Timestamp = ColumnType<Date, Date | string | undefined, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;

export type TenantStatus = 'active' | 'suspended' | 'deleted';

export interface TenantSettings {
  /** Requests per rate-limit window for each user/API key of this tenant. */
  rateLimitUser?: number;
  /** Requests per rate-limit window for the whole tenant. */
  rateLimitTenant?: number;
  /** Largest file this tenant may upload, in bytes (else PLEXICA_STORAGE_MAX_FILE_SIZE). */
  storageMaxFileSize?: number;
  /** Total bytes this tenant may store; 0 = unlimited (else PLEXICA_STORAGE_QUOTA). */
  storageQuotaBytes?: number;
}

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

export interface UsersTable {
  id: Generated<string>;
  tenant_id: string | null;
  email: string;
  email_normalized: string;
  password_hash: string | null;
  display_name: string | null;
  status: ColumnType<'active' | 'disabled', 'active' | 'disabled' | undefined, 'active' | 'disabled'>;
  is_super_admin: ColumnType<boolean, boolean | undefined, boolean>;
  roles: JSONColumnType<string[], string | undefined, string>;
  external_subject: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
  last_login_at: NullableTimestamp;
}

export interface RolesTable {
  id: Generated<string>;
  tenant_id: string;
  key: string;
  name: string;
  description: string | null;
  permissions: JSONColumnType<string[], string, string>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface SessionsTable {
  id: Generated<string>;
  user_id: string;
  tenant_id: string | null;
  kind: 'password' | 'oidc';
  user_agent: string | null;
  ip: string | null;
  created_at: Timestamp;
  last_used_at: Timestamp;
  expires_at: Date | string;
  revoked_at: NullableTimestamp;
}

export interface RefreshTokensTable {
  hash: string;
  session_id: string;
  created_at: Timestamp;
  used_at: NullableTimestamp;
}

export interface ApiKeysTable {
  id: Generated<string>;
  tenant_id: string;
  name: string;
  prefix: string;
  hash: string;
  permissions: JSONColumnType<string[], string, string>;
  created_by: string | null;
  created_at: Timestamp;
  expires_at: Date | string | null;
  last_used_at: NullableTimestamp;
  revoked_at: NullableTimestamp;
}

export interface IdentityProvidersTable {
  tenant_id: string;
  issuer: string;
  audience: string;
  jwks_uri: string | null;
  client_id: string | null;
  client_secret_id: string | null;
  email_claim: string;
  roles_claim: string;
  role_mapping: JSONColumnType<Record<string, string>, string, string>;
  default_roles: JSONColumnType<string[], string, string>;
  /** The key set URL in use: `jwks_uri`, or what discovery found when the provider was saved. */
  resolved_jwks_uri: string | null;
  created_at: Timestamp;
  updated_at: Timestamp;
}

/**
 * How an identity provider's subject came to sign in as a user: `jit` created
 * the user on first sign-in (its roles follow the IdP), `link` was made by the
 * account itself or an admin (roles stay the account's own), `legacy` was
 * attached to a password account by email before 0007 and signs in only once
 * linked explicitly.
 */
export type IdentityOrigin = 'jit' | 'link' | 'legacy';

export interface UserIdentitiesTable {
  id: Generated<string>;
  tenant_id: string;
  user_id: string;
  issuer: string;
  subject: string;
  origin: IdentityOrigin;
  linked_by: string | null;
  created_at: Timestamp;
  last_login_at: NullableTimestamp;
}

export interface SecretsTable {
  id: Generated<string>;
  tenant_id: string | null;
  name: string;
  key_id: string;
  wrapped_key: string;
  ciphertext: string;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface SigningKeysTable {
  kid: string;
  alg: string;
  public_jwk: JSONColumnType<Record<string, unknown>, string, string>;
  private_secret_id: string;
  created_at: Timestamp;
  retired_at: NullableTimestamp;
}

export interface PluginsTable {
  id: string;
  name: string;
  version: string;
  manifest: JSONColumnType<Record<string, unknown>, string, string>;
  status: string;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface TenantPluginsTable {
  tenant_id: string;
  plugin_id: string;
  enabled: boolean;
  configuration: JSONColumnType<Record<string, unknown>, string, string>;
}

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

export interface IdempotencyKeysTable {
  scope: string;
  key: string;
  fingerprint: string;
  status_code: number | null;
  content_type: string | null;
  body: string | null;
  created_at: Timestamp;
  expires_at: Date | string;
}

/** Tables of the `core` schema, addressed as `core.<table>`. */
export interface CoreDatabase {
  'core.tenants': TenantsTable;
  'core.users': UsersTable;
  'core.roles': RolesTable;
  'core.sessions': SessionsTable;
  'core.refresh_tokens': RefreshTokensTable;
  'core.api_keys': ApiKeysTable;
  'core.identity_providers': IdentityProvidersTable;
  'core.user_identities': UserIdentitiesTable;
  'core.secrets': SecretsTable;
  'core.signing_keys': SigningKeysTable;
  'core.plugins': PluginsTable;
  'core.tenant_plugins': TenantPluginsTable;
  'core.idempotency_keys': IdempotencyKeysTable;
  'core.jobs': JobsTable;
  'core.job_schedules': JobSchedulesTable;
}

export interface JobSchedulesTable {
  id: Generated<string>;
  tenant_id: string;
  type: string;
  cron: string;
  timezone: string | null;
  data: ColumnType<unknown, string | undefined, string>;
  paused: ColumnType<boolean, boolean | undefined, boolean>;
  next_run_at: Timestamp;
  last_run_at: NullableTimestamp;
  last_job_id: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export type JobStatusName = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface JobsTable {
  id: Generated<string>;
  tenant_id: string;
  type: string;
  status: ColumnType<JobStatusName, JobStatusName | undefined, JobStatusName>;
  data: ColumnType<unknown, string | undefined, string>;
  result: ColumnType<unknown, string | null | undefined, string | null>;
  progress: ColumnType<number, number | undefined, number>;
  priority: ColumnType<number, number | undefined, number>;
  attempts: ColumnType<number, number | undefined, number>;
  max_attempts: number;
  last_error: ColumnType<string | null, string | null | undefined, string | null>;
  dead: ColumnType<boolean, boolean | undefined, boolean>;
  idempotency_key: string | null;
  trace_id: string | null;
  delivery_id: ColumnType<string | null, string | null | undefined, string | null>;
  run_at: Timestamp;
  created_at: Timestamp;
  started_at: NullableTimestamp;
  finished_at: NullableTimestamp;
  updated_at: Timestamp;
}

/** Tables of one tenant schema; reach them with `db.withSchema(schema)`. */
export interface TenantDatabase {
  audit_events: AuditEventsTable;
  files: FilesTable;
  storage_usage: StorageUsageTable;
  signed_uploads: SignedUploadsTable;
}

/** Signed PUT URLs already used (one use each), kept until they expire (0004). */
export interface SignedUploadsTable {
  id: string;
  used_at: Timestamp;
  expires_at: Date | string;
}

export interface FilesTable {
  path: string;
  blob_key: string;
  /** bigint: pg returns it as a string */
  size: ColumnType<string, number, number>;
  content_type: string;
  created_at: Timestamp;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface StorageUsageTable {
  id: Generated<boolean>;
  bytes: ColumnType<string, never, number>;
  objects: ColumnType<string, never, number>;
}
