import { sql } from 'kysely';
import type { Migration } from '../../infra/database/migrator.js';

/** Migrations of every `tenant_{slug}` schema. */
export const auditTenantMigrations: Migration[] = [
  {
    id: 'audit/0001_audit_events',
    replaces: '0001_audit_events',
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
  {
    id: 'audit/0002_request_facts',
    async up(db, schema) {
      // who proved what, from where, under which server-made request id (issue 9 item 11)
      await sql`alter table ${sql.id(schema, 'audit_events')}
        add column credential text,
        add column ip text,
        add column request_id text`.execute(db);
      await sql`create index ${sql.id('audit_events_action')} on ${sql.id(schema, 'audit_events')} (action, id desc)`.execute(
        db,
      );
    },
  },
];
