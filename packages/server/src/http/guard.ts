import type { FastifyReply, FastifyRequest } from 'fastify';
import type { PlexicaConfig } from '../config.js';
import { type RequestContext, requestFacts } from '../context.js';
import { PlexicaError } from '../infra/errors.js';
import type { RateLimitStore } from '../infra/rate-limit/store.js';
import type { Authenticator } from '../modules/identity/authenticate.js';
import type { PermissionRegistry } from '../modules/permissions/registry.js';
import { assertTenantUsable, type TenantsService, toTenantRef } from '../modules/tenants/service.js';

const BEARER = /^Bearer\s+(\S+)\s*$/i;

export interface GuardDeps {
  config: PlexicaConfig;
  authenticator: Authenticator;
  registry: PermissionRegistry;
  tenants: TenantsService;
  rateLimits: RateLimitStore;
}

/**
 * The one preHandler of every /api route: authenticates the credential,
 * resolves the tenant (from the credential; only a super admin may name one
 * with X-Tenant-ID), enforces the route's declared permission, then the rate
 * limits. Sets the gateway headers of seed 003 for everything downstream.
 */
export function createGuard(deps: GuardDeps) {
  const { config, authenticator, registry, tenants, rateLimits } = deps;

  const limit = async (key: string, max: number) => {
    const { count, resetInMs } = await rateLimits.hit(key, config.rateLimitWindowMs);
    if (count > max) {
      const retryAfter = Math.max(1, Math.ceil(resetInMs / 1000));
      throw new PlexicaError('PLX_RATE_LIMITED', {
        detail: `limit of ${max} requests per window reached`,
        extra: { retryAfter },
      });
    }
    return { remaining: max - count, resetInMs };
  };

  return async function guard(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const route = request.routeOptions.config;
    const ctx: RequestContext = { ...requestFacts(request), principal: null, tenant: null };
    request.ctx = ctx;
    // the handler verifies the URL's signature before it touches anything
    if (route.auth === 'signed') return;
    if (route.auth === 'public') {
      await limit(`anonymous:rl:${request.ip}`, config.rateLimitAnonymous);
      return;
    }
    const header = request.headers.authorization;
    const match = header ? BEARER.exec(header) : null;
    if (!match?.[1]) throw new PlexicaError('PLX_AUTH_REQUIRED');
    const { principal, tenant } = await authenticator.authenticate(match[1]);
    ctx.principal = principal;
    ctx.tenant = tenant;

    const named = request.headers['x-tenant-id'];
    if (typeof named === 'string' && named !== '') {
      if (principal.isSuperAdmin) {
        const target = await tenants.find(named);
        if (!target) throw new PlexicaError('PLX_TENANT_NOT_FOUND', { detail: `no tenant ${named}` });
        // a super admin may look into a suspended tenant, not a deleted one
        if (target.status === 'deleted') assertTenantUsable(target.status);
        ctx.tenant = toTenantRef(target);
      } else if (named !== tenant?.id && named !== tenant?.slug) {
        throw new PlexicaError('PLX_TENANT_HEADER_FORBIDDEN');
      }
    }
    if (route.platform && !principal.isSuperAdmin) {
      throw new PlexicaError('PLX_PERMISSION_DENIED', { detail: 'this route is for super admins' });
    }
    if (route.permission) registry.authorize(ctx, route.permission);

    const limits = ctx.tenant?.settings ?? {};
    const scope = ctx.tenant ? `tenant:${ctx.tenant.slug}` : 'platform';
    const user = await limit(
      `${scope}:rl:${principal.type}:${principal.id}`,
      limits.rateLimitUser ?? config.rateLimitUser,
    );
    if (ctx.tenant) await limit(`${scope}:rl:all`, limits.rateLimitTenant ?? config.rateLimitTenant);
    reply.header('ratelimit-remaining', String(user.remaining));
    reply.header('ratelimit-reset', String(Math.ceil(user.resetInMs / 1000)));

    // seed 003 gateway headers, for plugins and proxies behind this request
    if (ctx.tenant) request.headers['x-tenant-id'] = ctx.tenant.id;
    else delete request.headers['x-tenant-id'];
    if (principal.userId) request.headers['x-user-id'] = principal.userId;
    request.log = request.log.child({
      tenantId: ctx.tenant?.id,
      userId: principal.userId,
      principal: principal.type,
    });
  };
}
