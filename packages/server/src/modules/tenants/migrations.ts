import { sql } from 'kysely';
import type { Migration } from '../../infra/database/migrator.js';

export const tenantsMigrations: Migration[] = [
  {
    id: 'tenants/0001_tenants',
    replaces: '0001_tenants',
    async up(db) {
      await sql`create table core.tenants (
        id uuid primary key default gen_random_uuid(),
        slug text not null unique,
        name text not null,
        status text not null default 'active' check (status in ('active', 'suspended', 'deleted')),
        settings jsonb not null default '{}',
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        deleted_at timestamptz,
        purge_after timestamptz
      )`.execute(db);
      // seed 001 §7: the plugin registry lives in core beside the tenants
      await sql`create table core.plugins (
        id text primary key,
        name text not null,
        version text not null,
        manifest jsonb not null,
        status text not null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`.execute(db);
      await sql`create table core.tenant_plugins (
        tenant_id uuid not null references core.tenants(id) on delete cascade,
        plugin_id text not null references core.plugins(id) on delete cascade,
        enabled boolean not null default false,
        configuration jsonb not null default '{}',
        primary key (tenant_id, plugin_id)
      )`.execute(db);
    },
  },
  {
    // issue 9 item 12: tokens without a session (an IdP's) issued before a suspension
    // must not work again after the resume; the time of the last suspension bounds them
    id: 'tenants/0002_tokens_not_before',
    async up(db) {
      await sql`alter table core.tenants add column tokens_not_before timestamptz`.execute(db);
    },
  },
  {
    // 0001 made core.plugins and core.tenant_plugins ahead of any plugin module; nothing
    // ever wrote them. The plugin module will create what it needs in its own migrations.
    id: 'tenants/0003_drop_plugin_placeholders',
    async up(db) {
      for (const table of ['tenant_plugins', 'plugins']) {
        const rows = await sql<{
          n: number;
        }>`select count(*)::int as n from ${sql.id('core', table)}`.execute(db);
        // a row means someone used them after all: keep the table, it is not ours to drop
        if (rows.rows[0]?.n === 0) await sql`drop table ${sql.id('core', table)}`.execute(db);
      }
    },
  },
];
