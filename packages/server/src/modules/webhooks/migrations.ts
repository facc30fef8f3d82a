import { sql } from 'kysely';
import type { Migration } from '../../infra/database/migrator.js';

/** Endpoints, the deliveries of events to them, and each attempt of a delivery. */
export const webhooksMigrations: Migration[] = [
  {
    id: 'webhooks/0001_webhooks',
    async up(db) {
      await sql`create table core.webhook_endpoints (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references core.tenants (id) on delete cascade,
        app_id uuid references core.apps (id) on delete cascade,
        url text not null,
        description text,
        event_types text[] not null,
        secret_id text not null,
        previous_secret_id text,
        previous_secret_until timestamptz,
        status text not null default 'active' check (status in ('active', 'disabled')),
        disabled_reason text,
        consecutive_failures integer not null default 0,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`.execute(db);
      await sql`create index webhook_endpoints_tenant on core.webhook_endpoints (tenant_id, status)`.execute(
        db,
      );
      await sql`create table core.webhook_deliveries (
        id uuid primary key default gen_random_uuid(),
        endpoint_id uuid not null references core.webhook_endpoints (id) on delete cascade,
        tenant_id uuid not null,
        event_id uuid not null,
        event_type text not null,
        payload jsonb not null,
        status text not null default 'pending' check (status in ('pending', 'succeeded', 'failed')),
        attempts integer not null default 0,
        next_attempt_at timestamptz,
        last_status integer,
        redelivery_of uuid,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`.execute(db);
      // the bus delivers at least once: one delivery per event and endpoint (re-deliveries are copies)
      await sql`create unique index webhook_deliveries_once on core.webhook_deliveries (endpoint_id, event_id)
        where redelivery_of is null`.execute(db);
      await sql`create index webhook_deliveries_endpoint on core.webhook_deliveries (endpoint_id, created_at desc)`.execute(
        db,
      );
      await sql`create index webhook_deliveries_created on core.webhook_deliveries (created_at)`.execute(db);
      await sql`create table core.webhook_attempts (
        id bigint generated always as identity primary key,
        delivery_id uuid not null references core.webhook_deliveries (id) on delete cascade,
        attempt integer not null,
        request_headers jsonb not null,
        response_status integer,
        response_body text,
        latency_ms integer not null,
        error text,
        created_at timestamptz not null default now()
      )`.execute(db);
      await sql`create index webhook_attempts_delivery on core.webhook_attempts (delivery_id, attempt)`.execute(
        db,
      );
    },
  },
];
