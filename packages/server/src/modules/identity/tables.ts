import type { ColumnType, Generated, JSONColumnType } from 'kysely';
import type { NullableTimestamp, Timestamp } from '../../infra/database/columns.js';
import type { TenantsTables } from '../tenants/index.js';

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

export interface SigningKeysTable {
  kid: string;
  alg: string;
  public_jwk: JSONColumnType<Record<string, unknown>, string, string>;
  private_secret_id: string;
  created_at: Timestamp;
  retired_at: NullableTimestamp;
}

/**
 * The identity module's tables in `core`, and `core.tenants`, which the
 * credential lookups join (one round trip per request on the hot path).
 */
export interface IdentityTables extends TenantsTables {
  'core.users': UsersTable;
  'core.roles': RolesTable;
  'core.sessions': SessionsTable;
  'core.refresh_tokens': RefreshTokensTable;
  'core.api_keys': ApiKeysTable;
  'core.identity_providers': IdentityProvidersTable;
  'core.user_identities': UserIdentitiesTable;
  'core.signing_keys': SigningKeysTable;
}
