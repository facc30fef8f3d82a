import { type Kysely, sql } from 'kysely';

/** Migrations run raw DDL on any schema, so they take an untyped handle. */
// biome-ignore lint/suspicious/noExplicitAny: migrations address tables that are not in a typed schema yet
export type MigrationDb = Kysely<any>;

/**
 * One versioned migration, owned by a module: `id` is `<module>/<number>_<what>`
 * (`storage/0002_signed_uploads`) and never changes once released. Migrations
 * apply in the order of the module list, and in each module in the order given.
 */
export interface Migration {
  id: string;
  /**
   * The id this migration had before ids were prefixed by module (`0002_secrets`):
   * a database that applied it under that id is not migrated again, its record is renamed.
   */
  replaces?: string;
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
  const ids = migrations.map((m) => m.id);
  const twice = ids.find((id, i) => ids.indexOf(id) !== i);
  if (twice) throw new Error(`migration ${twice} is listed twice`);
  const table = sql.id(schema, 'plexica_migrations');
  const done = await sql<{ id: string }>`select id from ${table}`.execute(trx);
  const applied = new Set(done.rows.map((r) => r.id));
  for (const migration of migrations) {
    if (migration.replaces && applied.has(migration.replaces) && !applied.has(migration.id)) {
      await sql`update ${table} set id = ${migration.id} where id = ${migration.replaces}`.execute(trx);
      applied.add(migration.id);
    }
  }
  const pending = migrations.filter((m) => !applied.has(m.id));
  for (const migration of pending) {
    await migration.up(trx, schema);
    await sql`insert into ${table} (id) values (${migration.id})`.execute(trx);
  }
  return pending.map((m) => m.id);
}
