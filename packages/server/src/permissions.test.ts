import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createServer } from './app/server.js';
import { loadConfig } from './config/index.js';
import type { Principal, RequestContext } from './context.js';
import type { IdempotencyStore } from './infra/idempotency.js';
import { createMetrics } from './infra/metrics.js';
import { createMemoryRateLimitStore } from './infra/rate-limit/store.js';
import type { Authenticator } from './modules/identity/authenticate.js';
import { CORE_PERMISSIONS } from './modules/identity/permissions.js';
import type { TenantsService } from './modules/tenants/service.js';
import { PermissionRegistry } from './permissions.js';

const ctxWith = (permissions: string[], userId = 'u1'): RequestContext => {
  const principal: Principal = {
    type: 'user',
    id: userId,
    userId,
    isSuperAdmin: false,
    roles: [],
    permissions: new Set(permissions),
    sessionId: null,
  };
  return { traceId: 't', principal, tenant: null };
};

describe('permission registry', () => {
  it('refuses a key registered twice, naming both owners', () => {
    const registry = new PermissionRegistry();
    registry.register('core', CORE_PERMISSIONS);
    expect(() =>
      registry.register('crm-plugin', [{ key: 'core:user:read', scope: 'tenant', description: 'again' }]),
    ).toThrowError(/core:user:read.*already registered by core/);
    expect(() =>
      registry.register('crm-plugin', [{ key: 'core:user:read', scope: 'tenant', description: 'again' }]),
    ).toThrow(expect.objectContaining({ code: 'PLX_PERMISSION_CONFLICT' }));
  });

  it.each(['crm', 'crm:contact', 'CRM:contact:read', 'crm:contact:read:all', 'crm::read'])(
    'refuses the malformed key %j',
    (key) => {
      const registry = new PermissionRegistry();
      expect(() => registry.register('p', [{ key, scope: 'tenant', description: 'x' }])).toThrowError(
        /module:resource:action/,
      );
    },
  );

  it('derives built-in roles: super_admin all, tenant_admin tenant keys, member flagged keys', () => {
    const registry = new PermissionRegistry();
    registry.register('core', CORE_PERMISSIONS);
    const all = registry.list().map((d) => d.key);
    expect([...registry.builtInRole('super_admin')].sort()).toEqual(all);
    expect(registry.builtInRole('tenant_admin').has('core:user:create')).toBe(true);
    expect(registry.builtInRole('tenant_admin').has('core:tenant:create')).toBe(false);
    expect(registry.builtInRole('member').has('core:user:read')).toBe(true);
    expect(registry.builtInRole('member').has('core:user:create')).toBe(false);
  });

  it('denies by role first, then by attribute policy (ABAC)', () => {
    const registry = new PermissionRegistry();
    registry.register('docs', [{ key: 'docs:page:edit', scope: 'tenant', description: 'edit pages' }]);
    registry.addPolicy<{ ownerId: string }>(
      'docs:page:edit',
      (_ctx, principal, page) => page.ownerId === principal.userId,
    );
    expect(() => registry.authorize(ctxWith([]), 'docs:page:edit')).toThrowError(
      /missing permission docs:page:edit/,
    );
    expect(() =>
      registry.authorize(ctxWith(['docs:page:edit']), 'docs:page:edit', { ownerId: 'u1' }),
    ).not.toThrow();
    expect(() =>
      registry.authorize(ctxWith(['docs:page:edit']), 'docs:page:edit', { ownerId: 'u2' }),
    ).toThrowError(/policy on docs:page:edit denies/);
  });

  it('refuses to grant platform keys or unknown keys in a tenant role', () => {
    const registry = new PermissionRegistry();
    registry.register('core', CORE_PERMISSIONS);
    expect(() => registry.assertGrantable(['core:user:read'])).not.toThrow();
    expect(() => registry.assertGrantable(['core:tenant:create'])).toThrowError(/not a grantable permission/);
    expect(() => registry.assertGrantable(['nope:nope:nope'])).toThrowError(/not a grantable permission/);
  });

  it('computes effective permissions: custom keys count only while registered and tenant-scoped', () => {
    const registry = new PermissionRegistry();
    registry.register('core', CORE_PERMISSIONS);
    const held = registry.permissionsOf({
      isSuperAdmin: false,
      roles: ['member', 'auditor', 'super_admin'],
      customPermissions: ['core:audit:read', 'core:tenant:delete', 'gone:thing:read'],
    });
    expect(held.has('core:audit:read')).toBe(true);
    expect(held.has('core:user:read')).toBe(true);
    // a tenant user listing super_admin among their roles gains nothing from it
    expect(held.has('core:tenant:delete')).toBe(false);
    expect(held.has('gone:thing:read')).toBe(false);
    expect(registry.permissionsOf({ isSuperAdmin: true, roles: [], customPermissions: [] })).toEqual(
      registry.builtInRole('super_admin'),
    );
  });

  it('names what the caller does not hold, and nothing for a super admin (issue 9 item 3)', () => {
    const registry = new PermissionRegistry();
    registry.register('core', CORE_PERMISSIONS);
    const wanted = ['core:user:update', 'core:user:read', 'core:role:manage', 'core:user:read'];
    expect(registry.notHeld(ctxWith(['core:user:read']), wanted)).toEqual([
      'core:role:manage',
      'core:user:update',
    ]);
    const root = ctxWith([]);
    root.principal = { ...root.principal!, isSuperAdmin: true };
    expect(registry.notHeld(root, wanted)).toEqual([]);
    expect(() => registry.notHeld({ traceId: 't', principal: null, tenant: null }, wanted)).toThrowError(
      /Authentication required/,
    );
  });
});

describe('route guards', () => {
  const build = async () => {
    const registry = new PermissionRegistry();
    registry.register('core', CORE_PERMISSIONS);
    const config = loadConfig({}, { logLevel: 'silent' });
    return createServer({
      config,
      logger: pino({ level: 'silent' }),
      metrics: createMetrics({ activeTenants: async () => 0, activePlugins: async () => 0 }),
      registry,
      rateLimits: createMemoryRateLimitStore(),
      authenticator: {} as Authenticator,
      tenants: {} as TenantsService,
      idempotency: {} as IdempotencyStore,
    });
  };

  it('fails at boot when an /api route declares no guard', async () => {
    const server = await build();
    expect(() => server.get('/api/v1/unguarded', async () => 'x')).toThrowError(
      /declares no auth, permission or platform guard/,
    );
    await server.close();
  });

  it('fails at boot when a route needs a permission nobody registered', async () => {
    const server = await build();
    expect(() =>
      server.get('/api/v1/ghost', { config: { permission: 'ghost:thing:read' } }, async () => 'x'),
    ).toThrowError(/unregistered permission ghost:thing:read/);
    await server.close();
  });
});
