import { createRemoteJWKSet, type JWTPayload, jwtVerify } from 'jose';
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import { type RequestContext, requireTenant } from '../../context.js';
import { isUniqueViolation } from '../../infra/database/errors.js';
import type { CoreDatabase } from '../../infra/database/index.js';
import { PlexicaError } from '../../infra/errors.js';
import type { AuditService } from '../audit/service.js';
import type { PermissionRegistry } from '../permissions/registry.js';
import type { SecretsService } from '../secrets/service.js';
import { assertTenantUsable, toTenantRef } from '../tenants/service.js';
import type { Authenticated } from './authenticate.js';
import { normalizeEmail } from './passwords.js';
import type { RolesService } from './roles.js';

export interface IdentityProvider {
  issuer: string;
  audience: string;
  jwksUri: string | null;
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
  put(ctx: RequestContext, input: IdentityProviderInput): Promise<IdentityProvider>;
  remove(ctx: RequestContext): Promise<void>;
}

/** Verifies an external token by its issuer and maps it to a tenant user and roles. */
export interface OidcVerifier {
  verify(token: string, issuer: string): Promise<Authenticated & { customPermissions: string[] }>;
}

/** Reads `a.b.c` from a claims object. */
const claimAt = (payload: JWTPayload, path: string): unknown =>
  path
    .split('.')
    .reduce<unknown>((value, part) => (value as Record<string, unknown> | undefined)?.[part], payload);

export function createOidcVerifier(options: {
  db: Kysely<CoreDatabase>;
  fetchTimeoutMs?: number;
}): OidcVerifier {
  const { db, fetchTimeoutMs = 5000 } = options;
  // jose caches keys inside each remote set and refetches on an unknown kid
  const keySets = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

  const keySetFor = async (issuer: string, jwksUri: string | null) => {
    const cacheKey = `${issuer} ${jwksUri ?? ''}`;
    let keySet = keySets.get(cacheKey);
    if (!keySet) {
      let uri = jwksUri;
      if (!uri) {
        const discovery = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, {
          signal: AbortSignal.timeout(fetchTimeoutMs),
        }).catch((err: unknown) => {
          throw new PlexicaError('PLX_AUTH_TOKEN_INVALID', {
            detail: 'identity provider unreachable',
            cause: err,
          });
        });
        if (!discovery.ok) {
          throw new PlexicaError('PLX_AUTH_TOKEN_INVALID', {
            detail: `OIDC discovery failed (${discovery.status})`,
          });
        }
        uri = ((await discovery.json()) as { jwks_uri?: string }).jwks_uri ?? null;
        if (!uri)
          throw new PlexicaError('PLX_AUTH_TOKEN_INVALID', { detail: 'OIDC discovery has no jwks_uri' });
      }
      keySet = createRemoteJWKSet(new URL(uri), { timeoutDuration: fetchTimeoutMs });
      keySets.set(cacheKey, keySet);
    }
    return keySet;
  };

  return {
    async verify(token, issuer) {
      const provider = await db
        .selectFrom('core.identity_providers as p')
        .innerJoin('core.tenants as t', 't.id', 'p.tenant_id')
        .selectAll('p')
        .select(['t.slug', 't.status', 't.settings'])
        .where('p.issuer', '=', issuer)
        .executeTakeFirst();
      if (!provider)
        throw new PlexicaError('PLX_AUTH_TOKEN_INVALID', { detail: 'token issuer is not trusted' });
      assertTenantUsable(provider.status);
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, await keySetFor(provider.issuer, provider.jwks_uri), {
          issuer: provider.issuer,
          audience: provider.audience,
        }));
      } catch (err) {
        if (err instanceof PlexicaError) throw err;
        const expired = (err as { code?: string }).code === 'ERR_JWT_EXPIRED';
        throw new PlexicaError(expired ? 'PLX_AUTH_TOKEN_EXPIRED' : 'PLX_AUTH_TOKEN_INVALID', { cause: err });
      }
      const email = claimAt(payload, provider.email_claim);
      if (typeof email !== 'string' || !payload.sub) {
        throw new PlexicaError('PLX_AUTH_TOKEN_INVALID', {
          detail: `token lacks sub or ${provider.email_claim}`,
        });
      }
      const external = claimAt(payload, provider.roles_claim);
      const mapped = (Array.isArray(external) ? external : [])
        .map((role) => provider.role_mapping[String(role)])
        .filter((role): role is string => typeof role === 'string');
      const roles = [...new Set([...provider.default_roles, ...mapped])].sort();

      // first sign-in creates the user; later ones keep its roles in step with the IdP
      const user = await db
        .insertInto('core.users')
        .values({
          tenant_id: provider.tenant_id,
          email,
          email_normalized: normalizeEmail(email),
          external_subject: payload.sub,
          roles: JSON.stringify(roles),
        })
        .onConflict((oc) =>
          oc.constraint('users_tenant_email').doUpdateSet({
            roles: JSON.stringify(roles),
            external_subject: payload.sub ?? null,
            last_login_at: new Date(),
          }),
        )
        .returning(['id', 'status'])
        .executeTakeFirstOrThrow();
      if (user.status !== 'active') throw new PlexicaError('PLX_AUTH_USER_DISABLED');
      const custom = await db
        .selectFrom('core.roles')
        .select(sql<string[]>`permissions`.as('permissions'))
        .where('tenant_id', '=', provider.tenant_id)
        .where('key', 'in', roles.length > 0 ? roles : [''])
        .execute();
      return {
        principal: {
          type: 'user',
          id: user.id,
          userId: user.id,
          isSuperAdmin: false,
          roles,
          permissions: new Set(),
          sessionId: null,
        },
        tenant: toTenantRef({ id: provider.tenant_id, slug: provider.slug, settings: provider.settings }),
        customPermissions: custom.flatMap((r) => r.permissions),
      };
    },
  };
}

export function createIdentityProvidersService(options: {
  db: Kysely<CoreDatabase>;
  registry: PermissionRegistry;
  secrets: SecretsService;
  roles: RolesService;
  audit: AuditService;
}): IdentityProvidersService {
  const { db, registry, secrets, roles, audit } = options;

  const read = async (tenantId: string): Promise<IdentityProvider> => {
    const row = await db
      .selectFrom('core.identity_providers')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .executeTakeFirst();
    if (!row) throw new PlexicaError('PLX_OIDC_NOT_CONFIGURED');
    return {
      issuer: row.issuer,
      audience: row.audience,
      jwksUri: row.jwks_uri,
      clientId: row.client_id,
      hasClientSecret: row.client_secret_id !== null,
      emailClaim: row.email_claim,
      rolesClaim: row.roles_claim,
      roleMapping: row.role_mapping,
      defaultRoles: row.default_roles,
    };
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
              data: { issuer: input.issuer },
            },
            trx,
          );
        });
      } catch (err) {
        if (isUniqueViolation(err)) {
          throw new PlexicaError('PLX_OIDC_ISSUER_TAKEN', {
            errors: [{ field: 'issuer', message: 'used by another tenant' }],
            cause: err,
          });
        }
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
  };
}
