import { randomUUID } from 'node:crypto';
import {
  type CryptoKey,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
  errors as joseErrors,
  jwtVerify,
  SignJWT,
} from 'jose';
import { type Kysely, sql } from 'kysely';
import type { Logger } from 'pino';
import { PlexicaError } from '../../infra/errors.js';
import type { SecretsService } from '../secrets/index.js';
import type { IdentityTables } from './tables.js';

export const TOKEN_ISSUER = 'plexica';
export const TOKEN_AUDIENCE = 'plexica-api';
const ALG = 'EdDSA';

export interface AccessClaims {
  /** User id. */
  sub: string;
  /** Tenant id; absent for a super admin. */
  tid?: string;
  /** Session id. */
  sid: string;
}

/** Signs and verifies Plexica's own access tokens (EdDSA, short-lived). */
export interface TokenIssuer {
  sign(claims: AccessClaims): Promise<string>;
  verify(token: string): Promise<AccessClaims>;
  /** The claims of a token that verified before and has not expired, without decoding it again. */
  known(token: string): AccessClaims | undefined;
  /** Public keys (JWKS) so plugins and gateways can verify tokens themselves. */
  jwks(): { keys: JWK[] };
  readonly ttlSeconds: number;
}

/**
 * Loads the active signing key, creating one on first start. The private key is
 * kept in the secrets store (encrypted under the master key) so every instance
 * that shares the database signs with the same key.
 */
export async function createTokenIssuer(options: {
  db: Kysely<IdentityTables>;
  secrets: SecretsService;
  ttlSeconds: number;
  logger: Logger;
}): Promise<TokenIssuer> {
  const { db, secrets, ttlSeconds, logger } = options;
  const active = await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext('plexica-signing-key'))`.execute(trx);
    const existing = await trx
      .selectFrom('core.signing_keys')
      .selectAll()
      .where('retired_at', 'is', null)
      .orderBy('created_at', 'desc')
      .executeTakeFirst();
    if (existing)
      return { kid: existing.kid, privateJwk: await secrets.read(existing.private_secret_id, trx) };
    const { publicKey, privateKey } = await generateKeyPair(ALG, { crv: 'Ed25519', extractable: true });
    const kid = randomUUID();
    const privateJwk = JSON.stringify(await exportJWK(privateKey));
    const secretId = await secrets.create(
      { name: `signing-key:${kid}`, tenantId: null, value: privateJwk },
      trx,
    );
    await trx
      .insertInto('core.signing_keys')
      .values({
        kid,
        alg: ALG,
        public_jwk: JSON.stringify({ ...(await exportJWK(publicKey)), kid, alg: ALG, use: 'sig' }),
        private_secret_id: secretId,
      })
      .execute();
    logger.info({ kid }, 'generated a new token signing key (stored encrypted in core.signing_keys)');
    return { kid, privateJwk };
  });
  const privateKey = (await importJWK(JSON.parse(active.privateJwk) as JWK, ALG)) as CryptoKey;
  const publicRows = await db.selectFrom('core.signing_keys').select(['kid', 'public_jwk']).execute();
  const publicKeys = new Map<string, CryptoKey>();
  for (const row of publicRows)
    publicKeys.set(row.kid, (await importJWK(row.public_jwk as JWK, ALG)) as CryptoKey);
  const jwks = { keys: publicRows.map((r) => r.public_jwk as JWK) };

  // A token string that verified once verifies again until it expires: keep the
  // claims (bounded) instead of redoing the EdDSA check on every request.
  // Revocation is not affected: the session is checked on every request anyway.
  const verified = new Map<string, { claims: AccessClaims; exp: number }>();
  const VERIFIED_MAX = 10_000;
  const known = (token: string): AccessClaims | undefined => {
    const hit = verified.get(token);
    if (!hit) return undefined;
    if (hit.exp * 1000 > Date.now()) return hit.claims;
    verified.delete(token);
    return undefined;
  };

  return {
    ttlSeconds,
    jwks: () => jwks,
    async sign(claims) {
      const jwt = new SignJWT({ sid: claims.sid, ...(claims.tid && { tid: claims.tid }) })
        .setProtectedHeader({ alg: ALG, kid: active.kid, typ: 'at+jwt' })
        .setSubject(claims.sub)
        .setIssuer(TOKEN_ISSUER)
        .setAudience(TOKEN_AUDIENCE)
        .setIssuedAt()
        .setExpirationTime(`${ttlSeconds}s`);
      return jwt.sign(privateKey);
    },
    known,
    async verify(token) {
      const hit = known(token);
      if (hit) return hit;
      try {
        const { payload } = await jwtVerify(
          token,
          async (header) => {
            const key = header.kid ? publicKeys.get(header.kid) : undefined;
            if (!key) throw new joseErrors.JWKSNoMatchingKey();
            return key;
          },
          { issuer: TOKEN_ISSUER, audience: TOKEN_AUDIENCE, algorithms: [ALG] },
        );
        if (typeof payload.sub !== 'string' || typeof payload.sid !== 'string') {
          throw new PlexicaError('PLX_AUTH_TOKEN_INVALID', { detail: 'token lacks sub or sid' });
        }
        const claims: AccessClaims = {
          sub: payload.sub,
          sid: payload.sid,
          ...(typeof payload.tid === 'string' && { tid: payload.tid }),
        };
        if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value as string);
        verified.set(token, { claims, exp: payload.exp ?? 0 });
        return claims;
      } catch (err) {
        if (err instanceof PlexicaError) throw err;
        if (err instanceof joseErrors.JWTExpired)
          throw new PlexicaError('PLX_AUTH_TOKEN_EXPIRED', { cause: err });
        throw new PlexicaError('PLX_AUTH_TOKEN_INVALID', { cause: err });
      }
    },
  };
}
