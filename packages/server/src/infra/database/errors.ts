import { PlexicaError } from '../errors.js';

interface PgErrorLike {
  code?: string;
  constraint?: string;
  message?: string;
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  // admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections
  '57P01',
  '57P02',
  '57P03',
  '53300',
  // query_canceled: our statement_timeout (PLEXICA_DATABASE_STATEMENT_TIMEOUT_MS)
  '57014',
]);

/**
 * What pg says without a code when the server cannot be reached or answers
 * too late: the pool's acquisition timeout, the client's read timeout, a
 * connection cut mid-query (pg 8).
 */
const CONNECTION_MESSAGES = [
  'timeout exceeded when trying to connect',
  'Query read timeout',
  'Connection terminated',
  'Client has encountered a connection error and is not queryable',
  'timeout expired',
];

/** SQLSTATE 53100 disk_full (and the class 53 out-of-space kin a full disk raises). */
const DISK_FULL_CODES = new Set(['53100']);

/** Seconds a client is told to wait (`Retry-After`) before trying an unavailable database again. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

/** SQLSTATE 23505: unique_violation. */
export const isUniqueViolation = (err: unknown, constraint?: string): boolean => {
  const e = err as PgErrorLike;
  return e?.code === '23505' && (constraint === undefined || e.constraint === constraint);
};

/**
 * Translates driver errors into Plexica errors, keeping the original as
 * `cause`. Unknown errors pass through untouched (they become 500s).
 */
export function translateDatabaseError(err: unknown): unknown {
  if (err instanceof PlexicaError) return err;
  const e = err as PgErrorLike;
  if (e?.code === '23505') return new PlexicaError('PLX_CONFLICT', { cause: err });
  if (
    (e?.code && CONNECTION_CODES.has(e.code)) ||
    (typeof e?.message === 'string' && CONNECTION_MESSAGES.some((m) => e.message?.startsWith(m)))
  )
    return new PlexicaError('PLX_DATABASE_UNAVAILABLE', {
      detail: 'the database did not answer in time or cannot be reached; try again shortly',
      extra: { retryAfter: DATABASE_RETRY_AFTER_SECONDS },
      cause: err,
    });
  if (e?.code && DISK_FULL_CODES.has(e.code))
    return new PlexicaError('PLX_DISK_FULL', {
      detail: 'the database has no disk space left to write this',
      cause: err,
    });
  return err;
}
