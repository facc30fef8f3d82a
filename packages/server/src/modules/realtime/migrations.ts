import { sql } from 'kysely';
import type { Migration } from '../../infra/database/migrator.js';

/**
 * The stream log and the one-time tickets. The log is the stream's own order
 * of the bus's tenant events: `seq` is given under one lock and committed
 * before the next is given, so a reader that saw `seq` N has seen every event
 * below N (the bus's positions are in commit order only per engine, and a
 * resume needs one order across instances).
 */
export const realtimeMigrations: Migration[] = [
  {
    id: 'realtime/0001_stream_log',
    async up(db) {
      await sql`create table core.realtime_log (
        seq bigint generated always as identity primary key,
        event_id uuid not null unique,
        tenant_id uuid not null,
        envelope jsonb not null,
        stored_at timestamptz not null default now()
      )`.execute(db);
      await sql`create index realtime_log_tenant on core.realtime_log (tenant_id, seq)`.execute(db);
      await sql`create index realtime_log_stored on core.realtime_log (stored_at)`.execute(db);
      // the id is a hash of the ticket and the credential is sealed under a key derived from
      // the ticket: the row alone opens nothing
      await sql`create table core.realtime_tickets (
        id text primary key,
        sealed text not null,
        expires_at timestamptz not null
      )`.execute(db);
      await sql`create index realtime_tickets_expiry on core.realtime_tickets (expires_at)`.execute(db);
    },
  },
];
