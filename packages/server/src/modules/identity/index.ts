import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { TenantRef } from '../../context.js';
import { systemContext } from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import type { OutboundGuard } from '../../infra/net/outbound-guard.js';
import { createLoginFailures } from '../../infra/rate-limit/login-failures.js';
import type { RateLimitStore } from '../../infra/rate-limit/store.js';
import type { SignalChannel } from '../../infra/signals/index.js';
import type { ModuleDefinition, PlexicaModule } from '../../module.js';
import type { PermissionRegistry } from '../../permissions.js';
import type { AuditService } from '../audit/index.js';
import type { SecretsService } from '../secrets/index.js';
import type { TenantsService } from '../tenants/index.js';
import { type ApiKeysService, createApiKeysService } from './api-keys.js';
import { type Authenticator, createAuthenticator } from './authenticate.js';
import { type IdentityConfig, identityOptions } from './config.js';
import { createIdentityLinksService, type IdentityLinksService } from './identity-links.js';
import { createIdentityProvidersService, type IdentityProvidersService } from './identity-providers.js';
import { identityMigrations } from './migrations.js';
import { createOidcVerifier } from './oidc.js';
import { createPasswordChangesService, type PasswordChangesService } from './password-changes.js';
import { CORE_PERMISSIONS } from './permissions.js';
import { createPrincipalCache, type PrincipalCache } from './principal-cache.js';
import { createRolesService, type RolesService } from './roles.js';
import { accessRoutes } from './routes/access.js';
import { authRoutes } from './routes/auth.js';
import { userRoutes } from './routes/users.js';
import { createSessionsService, type SessionsService } from './sessions.js';
import type { IdentityTables } from './tables.js';
import { createTokenIssuer, type TokenIssuer } from './tokens.js';
import { createUsersService, type UsersService } from './users.js';

export type { ApiKeysService } from './api-keys.js';
export type { Authenticator } from './authenticate.js';
export { type Bootstrap, bootstrapSuperAdmin } from './bootstrap.js';
export type { IdentityConfig } from './config.js';
export type { IdentityProvidersService } from './identity-providers.js';
export type { PasswordChangesService } from './password-changes.js';
export type { PrincipalCache, PrincipalChange } from './principal-cache.js';
export type { RolesService } from './roles.js';
export type { SessionsService } from './sessions.js';
export type { TokenIssuer } from './tokens.js';
export type { UsersService } from './users.js';

/**
 * Identity: users, sessions, access tokens, API keys, roles, the tenant's OIDC
 * provider and the `core:*` permission keys (the kernel's own).
 */
export const identityModule: ModuleDefinition<IdentityConfig> = {
  name: 'identity',
  config: { options: identityOptions },
  permissions: CORE_PERMISSIONS,
  coreMigrations: identityMigrations,
};

/** The identity module's services, and the authenticator the guard turns credentials into principals with. */
export interface IdentityServices {
  users: UsersService;
  sessions: SessionsService;
  apiKeys: ApiKeysService;
  roles: RolesService;
  providers: IdentityProvidersService;
  links: IdentityLinksService;
  passwords: PasswordChangesService;
  tokens: TokenIssuer;
  authenticator: Authenticator;
  /** Resolved principals per credential; changes invalidate it on every instance. */
  principals: PrincipalCache;
}

export async function createIdentityModule(deps: {
  db: Executor;
  logger: Logger;
  config: IdentityConfig;
  registry: PermissionRegistry;
  secrets: SecretsService;
  audit: AuditService;
  tenants: TenantsService;
  /** Failed logins are counted per account in the same store as the rate limits. */
  rateLimits: RateLimitStore;
  /** Every request made for a tenant (OIDC discovery and keys) goes through this one guard. */
  outbound: OutboundGuard;
  /** Carries principal invalidations to the other instances. */
  signals: SignalChannel;
}): Promise<PlexicaModule<IdentityServices>> {
  const { db, logger, config, registry, secrets, audit, tenants, outbound } = deps;
  const principals = createPrincipalCache({
    ttlSeconds: config.principalCacheTtlSeconds,
    signals: deps.signals,
    logger,
  });
  const tokens = await createTokenIssuer({ db, secrets, ttlSeconds: config.accessTokenTtlSeconds, logger });
  const sessions = createSessionsService({
    db,
    tokens,
    tenants,
    audit,
    loginFailures: createLoginFailures(deps.rateLimits, {
      maxFailures: config.loginMaxFailures,
      windowMs: config.loginFailureWindowSeconds * 1000,
    }),
    refreshTtlSeconds: config.refreshTokenTtlSeconds,
    principals,
  });
  const roles = createRolesService({ db, registry, audit, principals });
  const apiKeys = createApiKeysService({ db, registry, audit, principals });
  const users = createUsersService({ db, registry, roles, sessions, apiKeys, audit, principals });
  const oidc = createOidcVerifier({ db, guard: outbound, logger });
  const providers = createIdentityProvidersService({
    db,
    registry,
    secrets,
    roles,
    audit,
    guard: outbound,
    logger,
  });
  const links = createIdentityLinksService({ db, registry, roles, audit, verifier: oidc });
  const passwords = createPasswordChangesService({ db, sessions, tenants, audit, principals });
  const authenticator = createAuthenticator({ db, tokens, oidc, registry, logger, cache: principals });
  const service: IdentityServices = {
    users,
    sessions,
    apiKeys,
    roles,
    providers,
    links,
    passwords,
    tokens,
    authenticator,
    principals,
  };

  let pendingDiscovery: Promise<unknown> | undefined;
  return {
    name: 'identity',
    service,
    async routes(server) {
      await authRoutes(server, { sessions, tokens, passwords });
      await userRoutes(server, { users, sessions, tenants });
      await accessRoutes(server, { apiKeys, roles, providers, links, registry });
    },
    tenantLifecycle: {
      // a suspension ends every session of the tenant's users: no token from before it
      // works again after the resume (seed 003 tenant lifecycle; issue 9 item 12)
      async suspend(tenant, trx) {
        const revoked = await revokeTenantSessions(trx, tenant);
        await audit.record(
          systemContext(`tenant-suspend:${tenant.id}`, tenant),
          {
            action: 'auth.sessions_revoked',
            targetType: 'tenant',
            targetId: tenant.id,
            data: { reason: 'tenant_suspended', sessions: revoked },
          },
          trx,
        );
      },
      // after the commit of a status or settings change, a deletion or a purge
      changed: (tenant) => principals.invalidate({ kind: 'tenant', id: tenant.id }),
    },
    async start(roles) {
      // providers saved before save-time discovery existed get their key set URL here
      if (roles.has('api')) {
        pendingDiscovery = providers
          .discoverPending()
          .catch((err: unknown) => logger.error({ err }, 'OIDC discovery at start-up failed'));
      }
    },
    async close() {
      await pendingDiscovery;
      principals.close();
    },
  };
}

async function revokeTenantSessions(trx: Kysely<IdentityTables>, tenant: TenantRef): Promise<number> {
  const result = await trx
    .updateTable('core.sessions')
    .set({ revoked_at: new Date() })
    .where('tenant_id', '=', tenant.id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}
