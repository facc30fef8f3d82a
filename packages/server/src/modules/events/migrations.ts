import { sql } from 'kysely';
import type { Migration } from '../../infra/database/migrator.js';

/**
 * The bus's tables in `core`. `events` is the postgres driver's log; the
 * outbox and the dead letters serve every driver.
 */
export const busMigrations: Migration[] = [
  {
    id: 'events/0001_event_log',
    async up(db) {
      // `tx` is the writing transaction's id: consumers read only below the oldest running
      // transaction (pg_snapshot_xmin), so an event committed late is never skipped by a
      // cursor that already moved past its position
      await sql`create table core.events (
        position bigint generated always as identity primary key,
        tx xid8 not null default pg_current_xact_id(),
        id uuid not null,
        topic text not null,
        type text not null,
        tenant_id uuid,
        key text,
        time timestamptz not null,
        envelope jsonb not null,
        stored_at timestamptz not null default now()
      )`.execute(db);
      await sql`create index events_log_order on core.events (tx, position)`.execute(db);
      await sql`create index events_time on core.events (time)`.execute(db);
      await sql`create index events_stored on core.events (stored_at)`.execute(db);
      await sql`create table core.event_groups (
        name text primary key,
        pattern text not null,
        cursor_tx xid8 not null,
        cursor_position bigint not null,
        created_at timestamptz not null default now()
      )`.execute(db);
      // what each group has taken from the log and not acked; seq keeps the log order per group
      await sql`create table core.event_deliveries (
        seq bigint generated always as identity,
        group_name text not null references core.event_groups (name) on delete cascade,
        position bigint not null references core.events (position) on delete cascade,
        key text,
        attempts integer not null default 0,
        visible_at timestamptz not null default now(),
        primary key (group_name, position)
      )`.execute(db);
      await sql`create index event_deliveries_due on core.event_deliveries (group_name, visible_at, seq)`.execute(
        db,
      );
      await sql`create index event_deliveries_key on core.event_deliveries (group_name, key, seq)
        where key is not null`.execute(db);
    },
  },
  {
    id: 'events/0002_outbox_dead_letters',
    async up(db) {
      // drivers outside the database: events written in the caller's transaction, relayed after it
      await sql`create table core.event_outbox (
        id bigint generated always as identity primary key,
        topic text not null,
        key text,
        envelope jsonb not null,
        created_at timestamptz not null default now()
      )`.execute(db);
      // seed 003: original topic, position (offset), error, payload
      await sql`create table core.event_dead_letters (
        id uuid primary key default gen_random_uuid(),
        group_name text not null,
        topic text not null,
        position text not null,
        event_id uuid not null,
        tenant_id uuid,
        key text,
        error text not null,
        attempts integer not null,
        payload jsonb not null,
        created_at timestamptz not null default now(),
        redriven_at timestamptz
      )`.execute(db);
      await sql`create index event_dead_letters_group on core.event_dead_letters (group_name, created_at desc)`.execute(
        db,
      );
      await sql`create index event_dead_letters_tenant on core.event_dead_letters (tenant_id, created_at desc)`.execute(
        db,
      );
    },
  },
  {
    // the dead-letter API pages on seq (created_at repeats); the replay API finds a group's topics
    id: 'events/0005_dead_letter_seq_consumer_groups',
    async up(db) {
      await sql`alter table core.event_dead_letters add column seq bigint generated always as identity`.execute(
        db,
      );
      await sql`create unique index event_dead_letters_seq on core.event_dead_letters (seq)`.execute(db);
      await sql`create index event_dead_letters_tenant_seq on core.event_dead_letters (tenant_id, seq desc)`.execute(
        db,
      );
      // every group that subscribed, whatever the engine keeps of it (a Redis group has no topics)
      await sql`create table core.event_consumer_groups (
        name text primary key,
        topics text[] not null,
        subscribed_at timestamptz not null default now()
      )`.execute(db);
    },
  },
];

/**
 * Apps (seed 002's publishing applications) and the platform event log the
 * events API reads: per tenant, kept for the retention period (default 90 days).
 */
export const platformEventsMigrations: Migration[] = [
  {
    id: 'events/0003_apps_platform_events',
    async up(db) {
      await sql`create table core.apps (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references core.tenants (id) on delete cascade,
        name text not null,
        description text,
        created_by uuid,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        unique (tenant_id, name)
      )`.execute(db);
      await sql`create table core.platform_events (
        seq bigint generated always as identity primary key,
        id uuid not null unique,
        tenant_id uuid not null references core.tenants (id) on delete cascade,
        app_id uuid references core.apps (id) on delete cascade,
        source text not null,
        category text not null,
        type text not null,
        entity_type text,
        entity_id text,
        data jsonb not null,
        trace_id text,
        idempotency_key text,
        occurred_at timestamptz not null,
        created_at timestamptz not null default now()
      )`.execute(db);
      // an app's retried publish (same key) returns the first event
      await sql`create unique index platform_events_idempotency on core.platform_events (app_id, idempotency_key)
        where idempotency_key is not null`.execute(db);
      await sql`create index platform_events_tenant on core.platform_events (tenant_id, seq desc)`.execute(
        db,
      );
      await sql`create index platform_events_app on core.platform_events (tenant_id, app_id, seq desc)`.execute(
        db,
      );
      await sql`create index platform_events_type on core.platform_events (tenant_id, type, seq desc)`.execute(
        db,
      );
      await sql`create index platform_events_created on core.platform_events (created_at)`.execute(db);
    },
  },
  {
    // an API key of the identity module that belongs to an app (its events carry the app as source)
    id: 'events/0004_app_api_keys',
    async up(db) {
      await sql`create table core.app_api_keys (
        api_key_id uuid primary key,
        app_id uuid not null references core.apps (id) on delete cascade,
        tenant_id uuid not null references core.tenants (id) on delete cascade,
        created_at timestamptz not null default now()
      )`.execute(db);
      await sql`create index app_api_keys_app on core.app_api_keys (app_id)`.execute(db);
    },
  },
];

export const eventsMigrations: Migration[] = [...busMigrations, ...platformEventsMigrations];
