import { sql } from 'kysely';
import type { Migration } from '../../infra/database/migrator.js';

/** Migrations of every `tenant_{slug}` schema. */
export const auditTenantMigrations: Migration[] = [
  {
    id: '0001_audit_events',
    async up(db, schema) {
      await sql`create table ${sql.id(schema, 'audit_events')} (
        id bigserial primary key,
        at timestamptz not null default now(),
        actor_type text not null,
        actor_id text,
        action text not null,
        target_type text not null,
        target_id text,
        trace_id text,
        data jsonb not null default '{}'
      )`.execute(db);
      await sql`create index ${sql.id('audit_events_at')} on ${sql.id(schema, 'audit_events')} (at desc)`.execute(
        db,
      );
    },
  },
];
