import { sql } from 'kysely';
import type { Migration } from '../../infra/database/migrator.js';

export const identityMigrations: Migration[] = [
  {
    id: '0003_identity',
    async up(db) {
      // tenant_id is null for super admins; the same email may exist once per tenant
      await sql`create table core.users (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid references core.tenants(id) on delete cascade,
        email text not null,
        email_normalized text not null,
        password_hash text,
        display_name text,
        status text not null default 'active' check (status in ('active', 'disabled')),
        is_super_admin boolean not null default false,
        roles jsonb not null default '[]',
        external_subject text,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        last_login_at timestamptz,
        constraint users_tenant_email unique nulls not distinct (tenant_id, email_normalized)
      )`.execute(db);
      await sql`create table core.roles (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references core.tenants(id) on delete cascade,
        key text not null,
        name text not null,
        description text,
        permissions jsonb not null default '[]',
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        constraint roles_tenant_key unique (tenant_id, key)
      )`.execute(db);
      await sql`create table core.sessions (
        id uuid primary key default gen_random_uuid(),
        user_id uuid not null references core.users(id) on delete cascade,
        tenant_id uuid references core.tenants(id) on delete cascade,
        kind text not null,
        user_agent text,
        ip text,
        created_at timestamptz not null default now(),
        last_used_at timestamptz not null default now(),
        expires_at timestamptz not null,
        revoked_at timestamptz
      )`.execute(db);
      await sql`create index sessions_user on core.sessions (user_id)`.execute(db);
      await sql`create table core.refresh_tokens (
        hash text primary key,
        session_id uuid not null references core.sessions(id) on delete cascade,
        created_at timestamptz not null default now(),
        used_at timestamptz
      )`.execute(db);
      await sql`create index refresh_tokens_session on core.refresh_tokens (session_id)`.execute(db);
      await sql`create table core.api_keys (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references core.tenants(id) on delete cascade,
        name text not null,
        prefix text not null unique,
        hash text not null,
        permissions jsonb not null,
        created_by uuid references core.users(id) on delete set null,
        created_at timestamptz not null default now(),
        expires_at timestamptz,
        last_used_at timestamptz,
        revoked_at timestamptz
      )`.execute(db);
      await sql`create table core.identity_providers (
        tenant_id uuid primary key references core.tenants(id) on delete cascade,
        issuer text not null unique,
        audience text not null,
        jwks_uri text,
        client_id text,
        client_secret_id uuid references core.secrets(id) on delete set null,
        email_claim text not null,
        roles_claim text not null,
        role_mapping jsonb not null default '{}',
        default_roles jsonb not null default '[]',
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`.execute(db);
      await sql`create table core.signing_keys (
        kid text primary key,
        alg text not null,
        public_jwk jsonb not null,
        private_secret_id uuid not null references core.secrets(id),
        created_at timestamptz not null default now(),
        retired_at timestamptz
      )`.execute(db);
    },
  },
];
