import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import type { KernelConfig } from '../config/index.js';
import { assertTenantUsable, type RequestContext, requestFacts, toTenantRef } from '../context.js';
import { isPlexicaError, PlexicaError } from '../infra/errors.js';
import { type RateLimitStore, rateLimitedError } from '../infra/rate-limit/store.js';
import type { Authenticator } from '../modules/identity/index.js';
import type { TenantsService } from '../modules/tenants/index.js';
import type { PermissionRegistry } from '../permissions.js';

const BEARER = /^Bearer\s+(\S+)\s*$/i;
// addresses remembered as blocked, at most: enough for a wide attack, bounded memory
const MAX_BLOCKED_ADDRESSES = 10_000;

export interface GuardDeps {
  config: KernelConfig;
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
    if (count > max) throw rateLimitedError(`limit of ${max} requests per window reached`, resetInMs);
    return { remaining: max - count, resetInMs };
  };

  // Addresses whose failed credentials filled their anonymous window, until it resets:
  // refused before the credential is looked up, so a flood of well-formed wrong API keys
  // stops costing a database lookup each. Kept per process (the count itself is in the
  // shared store); another instance learns of the block at its own next failure.
  const blocked = new Map<string, number>();
  const block = (ip: string, resetInMs: number) => {
    if (blocked.size >= MAX_BLOCKED_ADDRESSES) {
      const now = Date.now();
      for (const [address, until] of blocked) if (until <= now) blocked.delete(address);
      const oldest = blocked.keys().next();
      if (blocked.size >= MAX_BLOCKED_ADDRESSES && !oldest.done) blocked.delete(oldest.value);
    }
    blocked.set(ip, Date.now() + resetInMs);
  };

  /**
   * The credential's principal. A failed one (bad JWT, wrong API key, revoked
   * session) counts against the address's anonymous window, as a login would
   * (issue 9 item 5); a valid one costs nothing more than before.
   */
  const authenticate = async (request: FastifyRequest, bearer: string) => {
    const until = blocked.get(request.ip);
    if (until !== undefined) {
      const left = until - Date.now();
      if (left > 0) throw rateLimitedError('too many failed credentials from this address', left);
      blocked.delete(request.ip);
    }
    try {
      return await authenticator.authenticate(bearer);
    } catch (err) {
      if (!isPlexicaError(err) || err.kind !== 'unauthenticated') throw err;
      const { count, resetInMs } = await rateLimits.hit(
        `anonymous:rl:${request.ip}`,
        config.rateLimitWindowMs,
      );
      if (count > config.rateLimitAnonymous) {
        block(request.ip, resetInMs);
        throw rateLimitedError('too many failed credentials from this address', resetInMs);
      }
      throw err;
    }
  };

  return async function guard(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const route = request.routeOptions.config;
    const ctx: RequestContext = { ...requestFacts(request), principal: null, tenant: null };
    request.ctx = ctx;
    // the signature is checked once the query is validated (`signed`, a preHandler)
    if (route.auth === 'signed') return;
    if (route.auth === 'public') {
      await limit(`anonymous:rl:${request.ip}`, config.rateLimitAnonymous);
      return;
    }
    const header = request.headers.authorization;
    const match = header ? BEARER.exec(header) : null;
    if (!match?.[1]) throw new PlexicaError('PLX_AUTH_REQUIRED');
    const { principal, tenant } = await authenticate(request, match[1]);
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
    // onto the request's own child logger: a second child per request was measurable (issue 12)
    (request.log as FastifyBaseLogger & { setBindings(b: object): void }).setBindings({
      tenantId: ctx.tenant?.id,
      userId: principal.userId,
      principal: principal.type,
    });
  };
}

/**
 * The preHandler of `auth: 'signed'` routes: the route's own check of the URL's
 * signature names the tenant it was signed for; the tenant must exist and be
 * usable, and becomes the request's context with no principal behind it.
 */
export function createSignedGuard(tenants: TenantsService) {
  return async function signedGuard(request: FastifyRequest): Promise<void> {
    const verify = request.routeOptions.config.verifySignature;
    if (!verify) throw new Error(`signed route ${request.routeOptions.url} has no verifySignature`);
    const tenantId = verify(request);
    const tenant = await tenants.find(tenantId);
    if (!tenant) throw new PlexicaError('PLX_TENANT_NOT_FOUND', { detail: `no tenant ${tenantId}` });
    assertTenantUsable(tenant.status);
    request.ctx = { ...request.ctx, principal: null, tenant: toTenantRef(tenant), credential: 'signed_url' };
  };
}
