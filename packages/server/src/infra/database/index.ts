import { Kysely, type LogEvent, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import { DatabaseConnectError } from './connect-errors.js';
import { type EmbeddedPostgres, startEmbeddedPostgres } from './embedded.js';
import { namedStatementPool } from './prepared.js';

export { type PreparedQuery, preparedPerSchema, prepareQuery } from './prepared.js';

/**
 * A database handle or transaction as it passes between modules. Each module
 * declares its own tables (`modules/<name>/tables.ts`) and views this handle
 * through them (`Kysely<JobsTables>`), so no file lists every table; across
 * module boundaries (a transaction handed to the audit log) it travels untyped.
 */
// biome-ignore lint/suspicious/noExplicitAny: the one untyped handle; modules type it with their own tables
export type Executor = Kysely<any>;

export type DatabaseKind = 'pglite' | 'postgres';

/** The database handle every module receives from `createApp`. */
export interface Database {
  kind: DatabaseKind;
  db: Executor;
  /** Round-trip time of `select 1` in milliseconds; throws when unreachable. */
  ping(): Promise<number>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** Where failures of idle connections are reported. */
  logger?: Pick<Logger, 'warn'>;
  /** Called for every query with its duration; feeds `db_query_duration_seconds`. */
  onQuery?: (event: LogEvent) => void;
}

// timestamptz → Date and bigint (count(*)) → number, once per process; pg's type
// parsers are global, so this is the one piece of module state we accept.
pg.types.setTypeParser(20, (value) => Number(value));

/**
 * Opens the database: PostgreSQL when `databaseUrl` is set, otherwise PGlite in
 * `<dataDir>/pgdata` behind a worker thread. Both are driven by `pg` + Kysely,
 * so every query is the same SQL in both modes.
 */
export async function openDatabase(
  config: { databaseUrl: string | undefined; databasePoolSize: number; dataDir: string },
  options: OpenDatabaseOptions = {},
): Promise<Database> {
  let embedded: EmbeddedPostgres | undefined;
  let pool: pg.Pool;
  if (config.databaseUrl) {
    pool = new pg.Pool({ connectionString: config.databaseUrl, max: config.databasePoolSize });
    // fail at once, naming the setting, rather than at the first migration with a bare code
    await pool.query('select 1').catch(async (err: unknown) => {
      await pool.end().catch(() => {});
      throw new DatabaseConnectError(config.databaseUrl!, err);
    });
  } else {
    embedded = await startEmbeddedPostgres(config.dataDir, 2);
    // PGlite runs one query at a time in one session, and pglite-socket's multiplexer
    // interleaves extended-protocol messages of concurrent connections under load
    // ("portal does not exist"). One connection queues in pg's pool instead; it also
    // means code inside a transaction must use the transaction handle (it does).
    pool = new pg.Pool({
      host: embedded.socketDir,
      port: 5432,
      user: 'postgres',
      database: 'postgres',
      max: 1,
    });
    // PGlite has one session for every connection: statements named on a connection that
    // closed are still there, and naming them again on the next would fail (42P05)
    pool.on('connect', (client) => {
      client.query('DEALLOCATE ALL').catch(() => undefined);
    });
  }
  // an idle client that errors (server restart) must not crash the process; the next
  // query reconnects, and the failure is said where someone can see it
  pool.on('error', (err) => options.logger?.warn({ err: err.message }, 'idle database connection failed'));
  const db: Executor = new Kysely({
    dialect: new PostgresDialect({ pool: namedStatementPool(pool) }),
    log: options.onQuery,
  });
  return {
    kind: embedded ? 'pglite' : 'postgres',
    db,
    async ping() {
      const started = performance.now();
      await pool.query('select 1');
      return performance.now() - started;
    },
    async close() {
      await db.destroy();
      await embedded?.stop();
    },
  };
}
