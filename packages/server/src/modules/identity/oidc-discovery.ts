import { createRemoteJWKSet, customFetch, type JWTVerifyGetKey } from 'jose';
import type { Logger } from 'pino';
import type { OutboundGuard } from '../../infra/net/outbound-guard.js';

/**
 * Resolves an issuer's `jwks_uri` by OpenID Connect Discovery 1.0, through the
 * outbound guard. Runs when an admin saves the provider (and at start-up for
 * providers saved before 0007), never for a bearer token.
 *
 * @throws Error with the reason (for the log; callers show one generic text)
 */
export async function discoverJwksUri(
  guard: OutboundGuard,
  issuer: string,
  timeoutMs: number,
): Promise<string> {
  const response = await guard.safeFetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, {
    headers: { accept: 'application/json' },
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (response.status !== 200) throw new Error(`discovery answered ${response.status}`);
  const document = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown };
  // Discovery 1.0 §4.3: the document's issuer MUST be identical to the one it was fetched for
  if (document.issuer !== issuer) throw new Error(`discovery names issuer ${String(document.issuer)}`);
  if (typeof document.jwks_uri !== 'string') throw new Error('discovery has no jwks_uri');
  await guard.assertSafeUrl(document.jwks_uri);
  return document.jwks_uri;
}

/** Thrown by a key getter instead of fetching while a key set is backing off. */
export class KeySetUnavailableError extends Error {
  override name = 'KeySetUnavailableError';
}

export interface KeySets {
  /**
   * A jose key getter for `jwksUri`. jose keeps the keys (10 min) and refetches on
   * an unknown `kid` at most every 30 s; on top of that a failed fetch (network,
   * status, not a key set, refused by the guard) backs off exponentially, so
   * anonymous tokens cannot turn into one outbound request each.
   */
  get(jwksUri: string): JWTVerifyGetKey;
}

const isKeySet = (value: unknown): boolean =>
  typeof value === 'object' &&
  value !== null &&
  Array.isArray((value as { keys?: unknown }).keys) &&
  (value as { keys: unknown[] }).keys.every((key) => typeof key === 'object' && key !== null);

const MAX_KEY_SETS = 1000;

export function createKeySets(options: {
  guard: OutboundGuard;
  logger: Logger;
  timeoutMs: number;
  /** First wait after a failure; doubles per failure up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
}): KeySets {
  const { guard, logger, timeoutMs, backoffMs = 10_000, maxBackoffMs = 300_000 } = options;
  const sets = new Map<string, JWTVerifyGetKey>();

  const create = (jwksUri: string): JWTVerifyGetKey => {
    let failures = 0;
    let retryAt = 0;
    return createRemoteJWKSet(new URL(jwksUri), {
      timeoutDuration: timeoutMs,
      [customFetch]: async (url, init) => {
        if (Date.now() < retryAt) throw new KeySetUnavailableError('key set fetch is backing off');
        let text: string;
        try {
          const response = await guard.safeFetch(url, init);
          if (response.status !== 200) throw new Error(`key set answered ${response.status}`);
          text = await response.text();
          if (!isKeySet(JSON.parse(text))) throw new Error('response is not a JSON Web Key Set');
        } catch (err) {
          failures += 1;
          const waitMs = Math.min(backoffMs * 2 ** (failures - 1), maxBackoffMs);
          retryAt = Date.now() + waitMs;
          logger.warn(
            { err, jwksUri, failures, retryInMs: waitMs },
            'identity provider key set fetch failed',
          );
          throw new KeySetUnavailableError('key set fetch failed', { cause: err });
        }
        failures = 0;
        retryAt = 0;
        return new Response(text, { status: 200, headers: { 'content-type': 'application/json' } });
      },
    });
  };

  return {
    get(jwksUri) {
      let set = sets.get(jwksUri);
      if (!set) {
        // admins choose these URLs: bound how many key sets one process keeps (oldest go first)
        if (sets.size >= MAX_KEY_SETS) sets.delete(sets.keys().next().value as string);
        set = create(jwksUri);
        sets.set(jwksUri, set);
      }
      return set;
    },
  };
}
