import type { Kysely, Selectable } from 'kysely';
import type { Logger } from 'pino';
import { type RequestContext, requireTenant } from '../../context.js';
import { isUniqueViolation } from '../../infra/database/errors.js';
import { inTransaction } from '../../infra/database/transaction.js';
import { PlexicaError } from '../../infra/errors.js';
import type { OutboundGuard } from '../../infra/net/outbound-guard.js';
import type { PermissionRegistry } from '../../permissions.js';
import type { AuditService } from '../audit/index.js';
import type { SecretsService } from '../secrets/index.js';
import { discoverJwksUri } from './oidc-discovery.js';
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

export const toProvider = (row: Selectable<IdentityProvidersTable>): IdentityProvider => ({
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
        await inTransaction(db, async (tx) => {
          const existing = await tx.db
            .selectFrom('core.identity_providers')
            .select('client_secret_id')
            .where('tenant_id', '=', tenant.id)
            .executeTakeFirst();
          let secretId = existing?.client_secret_id ?? null;
          if (input.clientSecret !== undefined) {
            if (secretId) await secrets.update(secretId, input.clientSecret, tx.db);
            else
              secretId = await secrets.create(
                { name: 'oidc-client-secret', tenantId: tenant.id, value: input.clientSecret },
                tx.db,
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
          await tx.db
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
            tx,
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
      await inTransaction(db, async (tx) => {
        const row = await tx.db
          .deleteFrom('core.identity_providers')
          .where('tenant_id', '=', tenant.id)
          .returning('client_secret_id')
          .executeTakeFirst();
        if (!row) throw new PlexicaError('PLX_OIDC_NOT_CONFIGURED');
        if (row.client_secret_id) await secrets.remove(row.client_secret_id, tx.db);
        await audit.record(ctx, { action: 'identity_provider.removed', targetType: 'identity_provider' }, tx);
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
