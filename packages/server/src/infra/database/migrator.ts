import { type Kysely, sql } from 'kysely';

/** Migrations run raw DDL on any schema, so they take an untyped handle. */
// biome-ignore lint/suspicious/noExplicitAny: migrations address tables that are not in a typed schema yet
export type MigrationDb = Kysely<any>;

/**
 * One versioned migration. `id`s sort in the order they apply
 * (`0001_tenants`, `0002_identity`, …) and never change once released.
 */
export interface Migration {
  id: string;
  /** `schema` is the schema being migrated (`core` or `tenant_{slug}`). */
  up(db: MigrationDb, schema: string): Promise<void>;
}

/**
 * Applies the pending `migrations` to `schema` using `trx`, which must be a
 * transaction handle: the caller decides the transaction's extent, so tenant
 * provisioning can create the tenant row, the schema and its tables atomically.
 * (Kysely's own Migrator opens its own transaction and cannot take part in one,
 * which is why this small runner exists.)
 *
 * @returns the ids applied now
 */
export async function migrateSchema(
  trx: MigrationDb,
  schema: string,
  migrations: Migration[],
): Promise<string[]> {
  // serialise concurrent starts of several instances on the same schema
  await sql`select pg_advisory_xact_lock(hashtext(${`plexica-migrate:${schema}`}))`.execute(trx);
  await sql`create schema if not exists ${sql.id(schema)}`.execute(trx);
  await sql`create table if not exists ${sql.id(schema, 'plexica_migrations')} (
    id text primary key,
    applied_at timestamptz not null default now()
  )`.execute(trx);
  const done = await sql<{ id: string }>`select id from ${sql.id(schema, 'plexica_migrations')}`.execute(trx);
  const applied = new Set(done.rows.map((r) => r.id));
  const pending = [...migrations].sort((a, b) => a.id.localeCompare(b.id)).filter((m) => !applied.has(m.id));
  for (const migration of pending) {
    await migration.up(trx, schema);
    await sql`insert into ${sql.id(schema, 'plexica_migrations')} (id) values (${migration.id})`.execute(trx);
  }
  return pending.map((m) => m.id);
}
