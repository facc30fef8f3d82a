import { decodeJwt, decodeProtectedHeader, errors, type JWTPayload, jwtVerify } from 'jose';
import type { Kysely, Selectable } from 'kysely';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { TenantSettings } from '../../context.js';
import {
  type Authenticated,
  assertTenantUsable,
  type RequestContext,
  requireTenant,
  toTenantRef,
} from '../../context.js';
import { isUniqueViolation } from '../../infra/database/errors.js';
import { PlexicaError } from '../../infra/errors.js';
import type { OutboundGuard } from '../../infra/net/outbound-guard.js';
import type { PermissionRegistry } from '../../permissions.js';
import type { AuditService } from '../audit/index.js';
import type { SecretsService } from '../secrets/index.js';
import { createKeySets, discoverJwksUri } from './oidc-discovery.js';
import { signInExternal } from './oidc-sign-in.js';
import type { RolesService } from './roles.js';
import type { IdentityProvidersTable, IdentityTables } from './tables.js';

export interface IdentityProvider {
  issuer: string;
  audience: string;
  /** The key set URL the admin gave; null = found by discovery. */
  jwksUri: string | null;
  /** The key set URL in use: `jwksUri`, or what discovery found when the provider was saved. */
  resolvedJwksUri: string | null;
  clientId: string | null;
  /** Whether a client secret is stored (it is never returned). */
  hasClientSecret: boolean;
  emailClaim: string;
  rolesClaim: string;
  roleMapping: Record<string, string>;
  defaultRoles: string[];
}

export interface IdentityProviderInput {
  issuer: string;
  audience: string;
  jwksUri?: string;
  clientId?: string;
  clientSecret?: string;
  emailClaim?: string;
  rolesClaim?: string;
  roleMapping?: Record<string, string>;
  defaultRoles?: string[];
}

/** Per-tenant OIDC configuration (e.g. a Keycloak realm `…/realms/tenant-{slug}`). */
export interface IdentityProvidersService {
  get(ctx: RequestContext): Promise<IdentityProvider>;
  /**
   * Checks the issuer and key set URLs with the outbound guard, runs discovery
   * (unless `jwksUri` is given) and stores the key set URL it found.
   */
  put(ctx: RequestContext, input: IdentityProviderInput): Promise<IdentityProvider>;
  remove(ctx: RequestContext): Promise<void>;
  /** Start-up: discovers the key sets of providers saved before 0007 (they have none resolved). */
  discoverPending(): Promise<void>;
}

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

const toProvider = (row: Selectable<IdentityProvidersTable>): IdentityProvider => ({
  issuer: row.issuer,
  audience: row.audience,
  jwksUri: row.jwks_uri,
  resolvedJwksUri: row.resolved_jwks_uri,
  clientId: row.client_id,
  hasClientSecret: row.client_secret_id !== null,
  emailClaim: row.email_claim,
  rolesClaim: row.roles_claim,
  roleMapping: row.role_mapping,
  defaultRoles: row.default_roles,
});

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

export function createIdentityProvidersService(options: {
  db: Kysely<IdentityTables>;
  registry: PermissionRegistry;
  secrets: SecretsService;
  roles: RolesService;
  audit: AuditService;
  guard: OutboundGuard;
  logger: Logger;
  discoveryTimeoutMs?: number;
}): IdentityProvidersService {
  const { db, registry, secrets, roles, audit, guard, logger, discoveryTimeoutMs = 5000 } = options;

  const read = async (tenantId: string): Promise<IdentityProvider> => {
    const row = await db
      .selectFrom('core.identity_providers')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .executeTakeFirst();
    if (!row) throw new PlexicaError('PLX_OIDC_NOT_CONFIGURED');
    return toProvider(row);
  };

  // names no tenant: B learns only that this exact pair is unavailable (issue 9 item 13)
  const pairTaken = (cause?: unknown) =>
    new PlexicaError('PLX_OIDC_ISSUER_TAKEN', {
      detail: 'this issuer and audience pair is not available; use an audience (client id) of your own',
      errors: [{ field: 'audience', message: 'issuer and audience pair is not available' }],
      cause,
    });

  const assertFetchable = async (field: string, url: string) => {
    try {
      await guard.assertSafeUrl(url);
    } catch (err) {
      if (!(err instanceof PlexicaError)) throw err;
      throw new PlexicaError(err.code, {
        detail: err.message,
        errors: [{ field, message: err.message }],
        cause: err,
      });
    }
  };

  const discover = async (tenantId: string, issuer: string) => {
    try {
      return await discoverJwksUri(guard, issuer, discoveryTimeoutMs);
    } catch (err) {
      // the reason (refused, closed port, status, bad document) is for the operator only
      logger.warn({ err, tenantId, issuer }, 'OIDC discovery failed');
      throw new PlexicaError('PLX_OIDC_DISCOVERY_FAILED', {
        errors: [{ field: 'issuer', message: 'OpenID Connect discovery failed' }],
      });
    }
  };

  return {
    async get(ctx) {
      registry.authorize(ctx, 'core:identity-provider:manage');
      return read(requireTenant(ctx).id);
    },

    async put(ctx, input) {
      registry.authorize(ctx, 'core:identity-provider:manage');
      const tenant = requireTenant(ctx);
      await roles.assertAssignable(ctx, [
        ...Object.values(input.roleMapping ?? {}),
        ...(input.defaultRoles ?? []),
      ]);
      // before any outbound request: a taken pair costs no fetch
      const taken = await db
        .selectFrom('core.identity_providers')
        .select('tenant_id')
        .where('issuer', '=', input.issuer)
        .where('audience', '=', input.audience)
        .where('tenant_id', '!=', tenant.id)
        .executeTakeFirst();
      if (taken) throw pairTaken();
      await assertFetchable('issuer', input.issuer);
      if (input.jwksUri !== undefined) await assertFetchable('jwksUri', input.jwksUri);
      const resolvedJwksUri = input.jwksUri ?? (await discover(tenant.id, input.issuer));
      try {
        await db.transaction().execute(async (trx) => {
          const existing = await trx
            .selectFrom('core.identity_providers')
            .select('client_secret_id')
            .where('tenant_id', '=', tenant.id)
            .executeTakeFirst();
          let secretId = existing?.client_secret_id ?? null;
          if (input.clientSecret !== undefined) {
            if (secretId) await secrets.update(secretId, input.clientSecret, trx);
            else
              secretId = await secrets.create(
                { name: 'oidc-client-secret', tenantId: tenant.id, value: input.clientSecret },
                trx,
              );
          }
          const values = {
            issuer: input.issuer,
            audience: input.audience,
            jwks_uri: input.jwksUri ?? null,
            resolved_jwks_uri: resolvedJwksUri,
            client_id: input.clientId ?? null,
            client_secret_id: secretId,
            email_claim: input.emailClaim ?? 'email',
            roles_claim: input.rolesClaim ?? 'realm_access.roles',
            role_mapping: JSON.stringify(input.roleMapping ?? {}),
            default_roles: JSON.stringify(input.defaultRoles ?? ['member']),
            updated_at: new Date(),
          };
          await trx
            .insertInto('core.identity_providers')
            .values({ tenant_id: tenant.id, ...values })
            .onConflict((oc) => oc.column('tenant_id').doUpdateSet(values))
            .execute();
          await audit.record(
            ctx,
            {
              action: 'identity_provider.configured',
              targetType: 'identity_provider',
              data: { issuer: input.issuer, audience: input.audience, jwksUri: resolvedJwksUri },
            },
            trx,
          );
        });
      } catch (err) {
        // another tenant saved the same pair since the check above
        if (isUniqueViolation(err)) throw pairTaken(err);
        throw err;
      }
      return read(tenant.id);
    },

    async remove(ctx) {
      registry.authorize(ctx, 'core:identity-provider:manage');
      const tenant = requireTenant(ctx);
      await db.transaction().execute(async (trx) => {
        const row = await trx
          .deleteFrom('core.identity_providers')
          .where('tenant_id', '=', tenant.id)
          .returning('client_secret_id')
          .executeTakeFirst();
        if (!row) throw new PlexicaError('PLX_OIDC_NOT_CONFIGURED');
        if (row.client_secret_id) await secrets.remove(row.client_secret_id, trx);
        await audit.record(
          ctx,
          { action: 'identity_provider.removed', targetType: 'identity_provider' },
          trx,
        );
      });
    },

    async discoverPending() {
      const pending = await db
        .selectFrom('core.identity_providers')
        .select(['tenant_id', 'issuer'])
        .where('resolved_jwks_uri', 'is', null)
        .execute();
      for (const row of pending) {
        try {
          const uri = await discoverJwksUri(guard, row.issuer, discoveryTimeoutMs);
          await db
            .updateTable('core.identity_providers')
            .set({ resolved_jwks_uri: uri })
            .where('tenant_id', '=', row.tenant_id)
            .where('issuer', '=', row.issuer)
            .execute();
        } catch (err) {
          logger.warn(
            { err, tenantId: row.tenant_id, issuer: row.issuer },
            'OIDC discovery at start-up failed: the tenant admin must save the identity provider again',
          );
        }
      }
    },
  };
}
