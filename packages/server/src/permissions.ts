import type { Principal, RequestContext } from './context.js';
import { PlexicaError } from './infra/errors.js';

/** `module:resource:action`, lowercase words joined by `-`. */
export const PERMISSION_KEY = /^[a-z][a-z0-9-]*:[a-z][a-z0-9-]*:[a-z][a-z0-9-]*$/;

export interface PermissionDefinition {
  key: string;
  description: string;
  /** `platform` keys are held by super admins only; `tenant` keys can be granted in a tenant. */
  scope: 'platform' | 'tenant';
  /** Granted to the built-in `member` role. */
  member?: boolean;
}

/**
 * An attribute condition on a resource (ABAC), evaluated after the role check
 * passed. Returning false denies.
 */
export type Policy<R = unknown> = (ctx: RequestContext, principal: Principal, resource: R) => boolean;

export const BUILT_IN_ROLES = ['super_admin', 'tenant_admin', 'member'] as const;
export type BuiltInRole = (typeof BUILT_IN_ROLES)[number];

/**
 * Permission keys registered by modules (and, later, plugins), the built-in
 * roles derived from them, and the ABAC policies attached to them.
 */
export class PermissionRegistry {
  readonly #definitions = new Map<string, PermissionDefinition & { owner: string }>();
  readonly #policies = new Map<string, Policy[]>();

  /** Registers `owner`'s keys; a key registered twice (by anyone) is an error. */
  register(owner: string, definitions: PermissionDefinition[]): void {
    for (const definition of definitions) {
      if (!PERMISSION_KEY.test(definition.key)) {
        throw new PlexicaError('PLX_PERMISSION_UNKNOWN', {
          detail: `${owner}: permission key "${definition.key}" is not module:resource:action`,
        });
      }
      const existing = this.#definitions.get(definition.key);
      if (existing) {
        throw new PlexicaError('PLX_PERMISSION_CONFLICT', {
          detail: `${owner}: permission "${definition.key}" is already registered by ${existing.owner}`,
        });
      }
      this.#definitions.set(definition.key, { ...definition, owner });
    }
  }

  addPolicy<R>(key: string, policy: Policy<R>): void {
    this.#require(key);
    this.#policies.set(key, [...(this.#policies.get(key) ?? []), policy as Policy]);
  }

  has(key: string): boolean {
    return this.#definitions.has(key);
  }

  get(key: string): PermissionDefinition | undefined {
    return this.#definitions.get(key);
  }

  list(): PermissionDefinition[] {
    return [...this.#definitions.values()]
      .map(({ owner: _owner, ...d }) => d)
      .sort((a, b) => a.key.localeCompare(b.key));
  }

  /** Permissions a built-in role grants. */
  builtInRole(role: BuiltInRole): Set<string> {
    const all = [...this.#definitions.values()];
    if (role === 'super_admin') return new Set(all.map((d) => d.key));
    if (role === 'tenant_admin') return new Set(all.filter((d) => d.scope === 'tenant').map((d) => d.key));
    return new Set(all.filter((d) => d.scope === 'tenant' && d.member).map((d) => d.key));
  }

  /**
   * Effective permissions of a user with these roles in a tenant: every key for a super admin,
   * else the built-in roles' keys plus the tenant-scoped registered keys of their custom roles
   * (a key unregistered since, or a platform key, grants nothing). Pure, so a principal built
   * from it can be cached.
   *
   * @example registry.permissionsOf({ isSuperAdmin: false, roles: ['member', 'auditor'], customPermissions: ['core:audit:read'] })
   */
  permissionsOf(input: {
    isSuperAdmin: boolean;
    roles: readonly string[];
    customPermissions: readonly string[];
  }): Set<string> {
    if (input.isSuperAdmin) return this.builtInRole('super_admin');
    const permissions = new Set(input.customPermissions.filter((key) => this.get(key)?.scope === 'tenant'));
    for (const role of input.roles) {
      if (role === 'tenant_admin' || role === 'member') {
        for (const key of this.builtInRole(role)) permissions.add(key);
      }
    }
    return permissions;
  }

  /**
   * The keys of `wanted` the caller does not hold, sorted; none for a super admin. The rule
   * behind every grant: you may give (or take away) only what you hold yourself.
   */
  notHeld(ctx: RequestContext, wanted: Iterable<string>): string[] {
    const principal = ctx.principal;
    if (!principal) throw new PlexicaError('PLX_AUTH_REQUIRED');
    if (principal.isSuperAdmin) return [];
    return [...new Set(wanted)].filter((key) => !principal.permissions.has(key)).sort();
  }

  /** Refuses keys nobody registered and platform keys (which no tenant can grant). */
  assertGrantable(keys: string[]): void {
    const errors = keys
      .filter((key) => this.get(key)?.scope !== 'tenant')
      .map((key) => ({ field: 'permissions', message: `"${key}" is not a grantable permission` }));
    if (errors.length > 0)
      throw new PlexicaError('PLX_PERMISSION_UNKNOWN', { errors, detail: errors[0]!.message });
  }

  /**
   * Throws `PLX_PERMISSION_DENIED` unless the principal holds `key` and every
   * policy on `key` allows the resource (when one is given).
   */
  authorize(ctx: RequestContext, key: string, resource?: unknown): void {
    this.#require(key);
    const principal = ctx.principal;
    if (!principal) throw new PlexicaError('PLX_AUTH_REQUIRED');
    if (!principal.permissions.has(key)) {
      throw new PlexicaError('PLX_PERMISSION_DENIED', { detail: `missing permission ${key}` });
    }
    if (resource === undefined) return;
    for (const policy of this.#policies.get(key) ?? []) {
      if (!policy(ctx, principal, resource)) {
        throw new PlexicaError('PLX_PERMISSION_DENIED', {
          detail: `a policy on ${key} denies access to this resource`,
        });
      }
    }
  }

  #require(key: string): void {
    if (!this.#definitions.has(key)) throw new Error(`permission ${key} was never registered`);
  }
}
