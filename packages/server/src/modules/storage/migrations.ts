import { sql } from 'kysely';
import type { Migration } from '../../infra/database/migrator.js';

/** Storage metadata in every tenant schema: path → blob, the running usage totals, used upload URLs. */
export const storageTenantMigrations: Migration[] = [
  {
    id: 'storage/0001_files',
    replaces: '0002_storage',
    async up(db, schema) {
      // "C" collation: byte order, so a prefix is one index range scan
      await sql`create table ${sql.id(schema, 'files')} (
        path text collate "C" primary key,
        blob_key uuid not null unique,
        size bigint not null check (size >= 0),
        content_type text not null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`.execute(db);
      await sql`create table ${sql.id(schema, 'storage_usage')} (
        id boolean primary key default true check (id),
        bytes bigint not null default 0 check (bytes >= 0),
        objects bigint not null default 0 check (objects >= 0)
      )`.execute(db);
      await sql`insert into ${sql.id(schema, 'storage_usage')} default values`.execute(db);
    },
  },
  {
    id: 'storage/0002_signed_uploads',
    async up(db, schema) {
      // a signed PUT URL is good for one upload: its id is recorded in the upload's own transaction
      await sql`create table ${sql.id(schema, 'signed_uploads')} (
        id uuid primary key,
        used_at timestamptz not null default now(),
        expires_at timestamptz not null
      )`.execute(db);
      await sql`create index ${sql.id('signed_uploads_expires_at')} on ${sql.id(schema, 'signed_uploads')} (expires_at)`.execute(
        db,
      );
    },
  },
];
