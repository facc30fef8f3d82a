import { ERROR_CODES, type ErrorCode } from './error-codes.js';
import type { components } from './schema.js';

export { ERROR_CODES, type ErrorCode } from './error-codes.js';

/** An RFC 9457 problem document, as every Plexica error response carries. */
export type Problem = components['schemas']['Problem'];

const KNOWN: ReadonlySet<string> = new Set(ERROR_CODES);

/** Whether `value` is a code of the catalogue this SDK was generated from. */
export const isErrorCode = (value: string): value is ErrorCode => KNOWN.has(value);

/**
 * A problem+json error response; every method throws it on a non-2xx status.
 *
 * @example
 * try {
 *   await plexica.users.get(id);
 * } catch (err) {
 *   if (err instanceof PlexicaApiError && err.is('PLX_USER_NOT_FOUND')) return undefined;
 *   throw err;
 * }
 */
export class PlexicaApiError extends Error {
  constructor(
    readonly status: number,
    /**
     * A catalogue code, typed so editors complete it. Also `string`: a server newer than this
     * SDK may answer with a code added since, and a response that is not a problem document
     * (a proxy's 502 page) gets `UNKNOWN`; claiming `ErrorCode` alone would be a lie at run time.
     * Compare with `is()` to have a misspelt code refused by the compiler.
     */
    readonly code: ErrorCode | (string & Record<never, never>),
    readonly problem: Partial<Problem> & Record<string, unknown>,
  ) {
    super(`${status} ${code}: ${String(problem.detail ?? problem.title ?? '')}`);
    this.name = 'PlexicaApiError';
  }

  /** Whether the server answered with `code`. */
  is(code: ErrorCode): boolean {
    return this.code === code;
  }
}

/** The error for a non-2xx `response` whose body (a problem document, or not) was read as `body`. */
export function toApiError(status: number, body: unknown): PlexicaApiError {
  const problem = (body && typeof body === 'object' ? body : {}) as Partial<Problem> &
    Record<string, unknown>;
  return new PlexicaApiError(status, String(problem.code ?? 'UNKNOWN'), problem);
}
