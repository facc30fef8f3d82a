import { decodeJwt, decodeProtectedHeader, errors, type JWTPayload, jwtVerify } from 'jose';
import type { Kysely, Selectable } from 'kysely';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { TenantSettings } from '../../context.js';
import { type Authenticated, assertTenantUsable, toTenantRef } from '../../context.js';
import { PlexicaError } from '../../infra/errors.js';
import type { OutboundGuard } from '../../infra/net/outbound-guard.js';
import { createKeySets } from './oidc-discovery.js';
import { signInExternal } from './oidc-sign-in.js';
import type { IdentityProvidersTable, IdentityTables } from './tables.js';

/** Verifies an external token by its issuer and audience and maps it to a tenant user and roles. */
export interface OidcVerifier {
  verify(token: string, issuer: string): Promise<Authenticated & { customPermissions: string[] }>;
  /** Verifies a token against one tenant's provider without signing in (to link an account). */
  verifyForTenant(token: string, tenantId: string): Promise<{ issuer: string; subject: string }>;
}

// asymmetric only: an HMAC "key" would be the JWKS document itself, and `none` is no signature
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
/** How far in the future an IdP's `iat` may be (clock drift between us and the IdP). */
export const IAT_SKEW_SECONDS = 60;
/**
 * Every refusal before a token's signature is known good says only this, so an
 * anonymous caller learns nothing of which issuers and audiences are trusted,
 * nor whether a key set could be fetched (issue 9 items 2 and 13).
 */
export const UNTRUSTED_TOKEN = 'token is not valid for a trusted identity provider';

type ProviderRow = Selectable<IdentityProvidersTable> & {
  slug: string;
  status: string;
  tokens_not_before: Date | null;
  settings: TenantSettings;
};

export function createOidcVerifier(options: {
  db: Kysely<IdentityTables>;
  guard: OutboundGuard;
  logger: Logger;
  fetchTimeoutMs?: number;
  /** First wait after a failed key set fetch (doubles per failure). */
  keySetBackoffMs?: number;
}): OidcVerifier {
  const { db, guard, logger, fetchTimeoutMs = 5000 } = options;
  const keySets = createKeySets({
    guard,
    logger,
    timeoutMs: fetchTimeoutMs,
    ...(options.keySetBackoffMs !== undefined && { backoffMs: options.keySetBackoffMs }),
  });

  const refuse = (reason: string, cause?: unknown) => {
    logger.debug({ reason, err: cause }, 'external token refused');
    return new PlexicaError('PLX_AUTH_TOKEN_INVALID', { detail: UNTRUSTED_TOKEN, cause });
  };

  const providers = () =>
    db
      .selectFrom('core.identity_providers as p')
      .innerJoin('core.tenants as t', 't.id', 'p.tenant_id')
      .selectAll('p')
      .select(['t.slug', 't.status', 't.settings', 't.tokens_not_before']);

  /** Header checks that need no database and no network. */
  const decode = (token: string) => {
    try {
      const header = decodeProtectedHeader(token);
      const payload = decodeJwt(token);
      if (typeof header.alg !== 'string' || !ALGORITHMS.includes(header.alg))
        throw new Error(`alg ${header.alg}`);
      return payload;
    } catch (err) {
      throw refuse('not an asymmetrically signed JWT', err);
    }
  };

  const verifyWith = async (token: string, provider: ProviderRow): Promise<JWTPayload & { sub: string }> => {
    if (!provider.resolved_jwks_uri) {
      logger.warn(
        { tenantId: provider.tenant_id },
        'identity provider has no key set yet (discovery failed at start-up): save it again',
      );
      throw refuse('provider has no resolved key set');
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keySets.get(provider.resolved_jwks_uri), {
        issuer: provider.issuer,
        audience: provider.audience,
        algorithms: ALGORITHMS,
        // issue 9 item 9: a token without exp would be good forever
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (err) {
      // jose checks the signature before the claims: only a genuine token gets past it
      if (err instanceof errors.JWTExpired) throw new PlexicaError('PLX_AUTH_TOKEN_EXPIRED', { cause: err });
      if (err instanceof errors.JWTClaimValidationFailed) {
        throw new PlexicaError('PLX_AUTH_TOKEN_INVALID', {
          detail: `token claim ${err.claim} is missing or invalid`,
          cause: err,
        });
      }
      throw refuse('signature or key set', err);
    }
    // jose checks iat against the clock only with maxTokenAge; a token from the future is refused here
    if (payload.iat !== undefined && payload.iat > Date.now() / 1000 + IAT_SKEW_SECONDS) {
      throw new PlexicaError('PLX_AUTH_TOKEN_INVALID', { detail: 'token claim iat is in the future' });
    }
    if (typeof payload.sub !== 'string' || payload.sub === '' || payload.sub.length > 255) {
      throw new PlexicaError('PLX_AUTH_TOKEN_INVALID', { detail: 'token claim sub is missing or invalid' });
    }
    return payload as JWTPayload & { sub: string };
  };

  return {
    async verify(token, issuer) {
      const claims = decode(token);
      const audiences = (Array.isArray(claims.aud) ? claims.aud : [claims.aud]).filter(
        (aud): aud is string => typeof aud === 'string',
      );
      if (audiences.length === 0) throw refuse('token has no audience');
      // two tenants may trust one issuer, each with its own audience (unique on the pair)
      const matches = await providers()
        .where('p.issuer', '=', issuer)
        .where('p.audience', 'in', audiences)
        .limit(2)
        .execute();
      // a token for the audiences of two tenants belongs to neither
      const provider = matches.length === 1 ? matches[0] : undefined;
      if (!provider) throw refuse(matches.length === 0 ? 'no provider' : 'token fits two providers');
      const payload = await verifyWith(token, provider);
      assertTenantUsable(provider.status);
      // issue 9 item 12: a suspension ends every sign-in, an IdP's included (a token
      // without iat cannot show it came after, so it is refused too); iat has whole seconds,
      // so a token from the very second of the suspension still passes
      const notBefore = provider.tokens_not_before?.getTime();
      if (
        notBefore !== undefined &&
        (payload.iat === undefined || payload.iat < Math.floor(notBefore / 1000))
      ) {
        throw new PlexicaError('PLX_AUTH_SESSION_REVOKED', {
          detail: 'token was issued before the tenant was last suspended: sign in again',
        });
      }
      const user = await signInExternal(db, provider, payload);
      const custom = await db
        .selectFrom('core.roles')
        .select(sql<string[]>`permissions`.as('permissions'))
        .where('tenant_id', '=', provider.tenant_id)
        .where('key', 'in', user.roles.length > 0 ? user.roles : [''])
        .execute();
      return {
        principal: {
          type: 'user',
          id: user.id,
          userId: user.id,
          isSuperAdmin: false,
          roles: user.roles,
          permissions: new Set(),
          sessionId: null,
        },
        tenant: toTenantRef({ id: provider.tenant_id, slug: provider.slug, settings: provider.settings }),
        customPermissions: custom.flatMap((r) => r.permissions),
      };
    },

    async verifyForTenant(token, tenantId) {
      const claims = decode(token);
      const provider = await providers().where('p.tenant_id', '=', tenantId).executeTakeFirst();
      if (!provider) throw new PlexicaError('PLX_OIDC_NOT_CONFIGURED');
      if (claims.iss !== provider.issuer) throw refuse('issuer of another provider');
      const payload = await verifyWith(token, provider);
      return { issuer: provider.issuer, subject: payload.sub };
    },
  };
}
