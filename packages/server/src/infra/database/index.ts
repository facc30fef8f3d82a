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
  /** Round-trip time of `select 1` in milliseconds; throws when unreachable or slower than `timeoutMs`. */
  ping(timeoutMs?: number): Promise<number>;
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
  config: {
    databaseUrl: string | undefined;
    databasePoolSize: number;
    dataDir: string;
    /** PostgreSQL: longest wait for a connection; 0 or unset = none. */
    databaseConnectTimeoutMs?: number;
    /** PostgreSQL: longest a statement may run; 0 or unset = none. */
    databaseStatementTimeoutMs?: number;
  },
  options: OpenDatabaseOptions = {},
): Promise<Database> {
  let embedded: EmbeddedPostgres | undefined;
  let pool: pg.Pool;
  if (config.databaseUrl) {
    const statementTimeout = config.databaseStatementTimeoutMs || undefined;
    pool = new pg.Pool({
      connectionString: config.databaseUrl,
      max: config.databasePoolSize,
      // a frozen server (SIGSTOP, a stuck disk, a partition) answers nothing: without these every
      // request waits until its client gives up (issue 11 item 3); with them it is a 503
      connectionTimeoutMillis: config.databaseConnectTimeoutMs || 0,
      // the server cancels a slow statement itself; the client's own limit, a little later,
      // catches a server that cannot answer at all
      statement_timeout: statementTimeout,
      query_timeout: statementTimeout && statementTimeout + 500,
      keepAlive: true,
    });
    // a connection whose statement timed out client-side still waits for that reply: closed,
    // so the pool opens a fresh one instead of queueing the next request behind it
    pool.on('connect', (client) => dropOnReadTimeout(client));
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
  // nor one in use: a connection cut mid-query (server killed, a timed-out connection closed)
  // rejects its query and then emits 'error', which without a listener ends the process; the
  // pool drops the dead client when it is released
  pool.on('connect', (client) =>
    client.on('error', (err) => options.logger?.warn({ err: err.message }, 'database connection failed')),
  );
  const db: Executor = new Kysely({
    dialect: new PostgresDialect({ pool: namedStatementPool(pool) }),
    log: options.onQuery,
  });
  return {
    kind: embedded ? 'pglite' : 'postgres',
    db,
    async ping(timeoutMs) {
      const started = performance.now();
      await withTimeout(pool.query('select 1'), timeoutMs, 'the database did not answer');
      return performance.now() - started;
    },
    async close() {
      await db.destroy();
      await embedded?.stop();
    },
  };
}

/** Rejects when `promise` has not settled within `timeoutMs` (unset: waits as long as it takes). */
export function withTimeout<T>(promise: Promise<T>, timeoutMs: number | undefined, what: string): Promise<T> {
  if (!timeoutMs) return promise;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function dropOnReadTimeout(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
  (client as { query: unknown }).query = (...args: unknown[]) => {
    const result = query(...args);
    // callback-style calls return nothing; Kysely and pg-boss use the promise form
    if (result && typeof result.catch === 'function') {
      return result.catch((err: unknown) => {
        if ((err as Error)?.message === 'Query read timeout')
          (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
        throw err;
      });
    }
    return result;
  };
}
