import { sql } from 'kysely';
import type { Migration } from '../../infra/database/migrator.js';

export const secretsMigrations: Migration[] = [
  {
    id: 'secrets/0001_secrets',
    replaces: '0002_secrets',
    async up(db) {
      await sql`create table core.secrets (
        id uuid primary key,
        tenant_id uuid references core.tenants(id) on delete cascade,
        name text not null,
        key_id text not null,
        wrapped_key text not null,
        ciphertext text not null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`.execute(db);
      await sql`create index secrets_key_id on core.secrets (key_id)`.execute(db);
    },
  },
];
