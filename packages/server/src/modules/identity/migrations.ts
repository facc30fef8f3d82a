import { sql } from 'kysely';
import type { Migration } from '../../infra/database/migrator.js';

export const identityMigrations: Migration[] = [
  {
    id: 'identity/0001_identity',
    replaces: '0003_identity',
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
  {
    // issue 9 items 1, 2 and 13: external identities keyed by (tenant, issuer, sub), key sets
    // resolved when the provider is saved, and one issuer shared by tenants with their own audience
    id: 'identity/0002_external_identities',
    async up(db) {
      await sql`alter table core.identity_providers add column resolved_jwks_uri text`.execute(db);
      // an explicit jwks_uri is used as it was; the others are discovered again at start-up
      // (through the outbound guard), never on a bearer's request
      await sql`update core.identity_providers set resolved_jwks_uri = jwks_uri`.execute(db);
      await sql`alter table core.identity_providers drop constraint identity_providers_issuer_key`.execute(
        db,
      );
      await sql`alter table core.identity_providers
        add constraint identity_providers_issuer_audience unique (issuer, audience)`.execute(db);
      await sql`create table core.user_identities (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references core.tenants(id) on delete cascade,
        user_id uuid not null references core.users(id) on delete cascade,
        issuer text not null,
        subject text not null,
        origin text not null check (origin in ('jit', 'link', 'legacy')),
        linked_by uuid references core.users(id) on delete set null,
        created_at timestamptz not null default now(),
        last_login_at timestamptz,
        constraint user_identities_subject unique (tenant_id, issuer, subject)
      )`.execute(db);
      await sql`create index user_identities_user on core.user_identities (user_id)`.execute(db);
      // Carry every external_subject forward under the tenant's issuer. A user without a password
      // was created by the IdP (jit); one with a password was attached by the old email match,
      // maybe by an attacker, so it is kept as legacy and signs in only once linked explicitly.
      // When two users share a subject (the old upsert allowed it) the last one to sign in keeps
      // the identity; users.external_subject stays as it was, so nothing is lost either way.
      await sql`insert into core.user_identities (tenant_id, user_id, issuer, subject, origin, last_login_at)
        select distinct on (u.tenant_id, p.issuer, u.external_subject)
          u.tenant_id, u.id, p.issuer, u.external_subject,
          case when u.password_hash is null then 'jit' else 'legacy' end, u.last_login_at
        from core.users u
        join core.identity_providers p on p.tenant_id = u.tenant_id
        where u.external_subject is not null
        order by u.tenant_id, p.issuer, u.external_subject, u.last_login_at desc nulls last, u.created_at`.execute(
        db,
      );
    },
  },
];
