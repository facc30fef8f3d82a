import { sql } from 'kysely';
import type { Migration } from '../../infra/database/migrator.js';

/**
 * `core.jobs`: the status of every job, whatever engine delivers it. The API
 * reads only this table; the worker writes it at every transition.
 */
export const jobsMigrations: Migration[] = [
  {
    id: 'jobs/0001_jobs',
    replaces: '0005_jobs',
    async up(db) {
      await sql`create table core.jobs (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references core.tenants (id) on delete cascade,
        type text not null,
        status text not null default 'pending'
          check (status in ('pending', 'running', 'completed', 'failed', 'cancelled')),
        data jsonb not null default '{}',
        result jsonb,
        progress integer not null default 0 check (progress between 0 and 100),
        priority integer not null default 0,
        attempts integer not null default 0,
        max_attempts integer not null,
        last_error text,
        dead boolean not null default false,
        idempotency_key text,
        trace_id text,
        delivery_id text,
        run_at timestamptz not null default now(),
        created_at timestamptz not null default now(),
        started_at timestamptz,
        finished_at timestamptz,
        updated_at timestamptz not null default now(),
        unique (tenant_id, idempotency_key)
      )`.execute(db);
      await sql`create index jobs_tenant_status on core.jobs (tenant_id, status, created_at desc)`.execute(
        db,
      );
      await sql`create index jobs_tenant_type on core.jobs (tenant_id, type, created_at desc)`.execute(db);
      // dispatch windows (engines outside our transaction, see window.ts): what waits, what the engine holds
      await sql`create index jobs_waiting on core.jobs (tenant_id, type, priority desc, run_at, created_at)
        where status = 'pending' and delivery_id is null`.execute(db);
      await sql`create index jobs_delivered on core.jobs (tenant_id, type)
        where status in ('pending', 'running') and delivery_id is not null`.execute(db);
    },
  },
  {
    // cron schedules: the scheduler role enqueues a job for each due tick
    id: 'jobs/0002_job_schedules',
    replaces: '0006_job_schedules',
    async up(db) {
      await sql`create table core.job_schedules (
        id uuid primary key default gen_random_uuid(),
        tenant_id uuid not null references core.tenants (id) on delete cascade,
        type text not null,
        cron text not null,
        timezone text,
        data jsonb not null default '{}',
        paused boolean not null default false,
        next_run_at timestamptz not null,
        last_run_at timestamptz,
        last_job_id uuid,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`.execute(db);
      await sql`create index job_schedules_due on core.job_schedules (next_run_at) where not paused`.execute(
        db,
      );
      await sql`create index job_schedules_tenant on core.job_schedules (tenant_id, created_at)`.execute(db);
    },
  },
  {
    // job types declared by the process that defines them, known to every role (declared.ts)
    id: 'jobs/0003_job_types',
    async up(db) {
      await sql`create table core.job_types (
        type text primary key,
        schema jsonb,
        max_attempts integer not null,
        timeout_ms integer not null,
        concurrency integer not null,
        tenant_concurrency integer not null,
        retry_delay_seconds double precision,
        updated_at timestamptz not null default now()
      )`.execute(db);
    },
  },
];
