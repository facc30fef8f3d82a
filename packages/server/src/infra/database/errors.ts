import { PlexicaError } from '../errors.js';

interface PgErrorLike {
  code?: string;
  constraint?: string;
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EPIPE',
  '57P01',
  '57P03',
]);

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
  if (e?.code && CONNECTION_CODES.has(e.code))
    return new PlexicaError('PLX_DATABASE_UNAVAILABLE', { cause: err });
  return err;
}
