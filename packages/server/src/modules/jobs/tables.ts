import type { ColumnType, Generated } from 'kysely';
import type { NullableTimestamp, Timestamp } from '../../infra/database/columns.js';
import type { TenantsTables } from '../tenants/index.js';

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

/** A job type some process defines, so every role knows it (declared.ts). */
export interface JobTypesTable {
  type: string;
  schema: ColumnType<unknown, string | null, string | null>;
  max_attempts: number;
  timeout_ms: number;
  concurrency: number;
  tenant_concurrency: number;
  retry_delay_seconds: number | null;
  updated_at: ColumnType<Date, Date | undefined, Date>;
}

/**
 * The jobs module's tables in `core`, and `core.tenants`, which the cron tick
 * reads in its transaction to skip deleted tenants.
 */
export interface JobsTables extends TenantsTables {
  'core.jobs': JobsTable;
  'core.job_schedules': JobSchedulesTable;
  'core.job_types': JobTypesTable;
}
