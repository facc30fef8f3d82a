import type { Kysely, Selectable } from 'kysely';
import { sql } from 'kysely';
import { type RequestContext, requireTenant } from '../../context.js';
import { isUniqueViolation } from '../../infra/database/errors.js';
import { inTransaction } from '../../infra/database/transaction.js';
import { PlexicaError } from '../../infra/errors.js';
import { BUILT_IN_ROLES, type PermissionRegistry } from '../../permissions.js';
import type { AuditService } from '../audit/index.js';
import type { PrincipalCache } from './principal-cache.js';
import type { IdentityTables, RolesTable } from './tables.js';

export interface Role {
  key: string;
  name: string;
  description: string | null;
  permissions: string[];
  builtIn: boolean;
}

/** Built-in roles plus the tenant's custom roles. */
export interface RolesService {
  list(ctx: RequestContext): Promise<Role[]>;
  create(
    ctx: RequestContext,
    input: { key: string; name: string; description?: string; permissions: string[] },
  ): Promise<Role>;
  update(
    ctx: RequestContext,
    key: string,
    patch: { name?: string; description?: string | null; permissions?: string[] },
  ): Promise<Role>;
  /** Deletes a custom role and takes it away from every user who had it. */
  remove(ctx: RequestContext, key: string): Promise<void>;
  /**
   * Refuses roles a tenant user may not be given (`PLX_ROLE_NOT_FOUND`: anything but
   * tenant_admin, member and the tenant's custom roles) and roles carrying a permission the
   * caller does not hold (`PLX_PERMISSION_NOT_HELD`; a super admin holds all). Used wherever
   * roles are granted: user creation and update, the OIDC role mapping and default roles.
   */
  assertAssignable(ctx: RequestContext, roles: string[]): Promise<void>;
  /**
   * Refuses (`PLX_PERMISSION_NOT_HELD`) unless the caller holds every permission `roles`
   * carry in the tenant: a user is changed or deleted only by someone at least as strong.
   * `subject` names the holder in the error, e.g. `user 6f…`.
   *
   * @example await roles.assertHoldsAllOf(ctx, target.roles, `user ${target.id}`)
   */
  assertHoldsAllOf(ctx: RequestContext, roles: string[], subject: string): Promise<void>;
}

const BUILT_IN_NAMES: Record<string, string> = {
  super_admin: 'Super admin',
  tenant_admin: 'Tenant admin',
  member: 'Member',
};

const toRole = (row: Selectable<RolesTable>): Role => ({
  key: row.key,
  name: row.name,
  description: row.description,
  permissions: row.permissions,
  builtIn: false,
});

export function createRolesService(options: {
  db: Kysely<IdentityTables>;
  registry: PermissionRegistry;
  audit: AuditService;
  /** Told of every change that makes a resolved principal stale (after it committed). */
  principals: Pick<PrincipalCache, 'invalidate'>;
}): RolesService {
  const { db, registry, audit, principals } = options;

  const assertCustom = (key: string) => {
    if ((BUILT_IN_ROLES as readonly string[]).includes(key)) {
      throw new PlexicaError('PLX_ROLE_BUILTIN', { detail: `${key} is a built-in role` });
    }
  };

  // a custom role's stored keys that still grant something (see permissionsOf)
  const granted = (stored: string[]) =>
    registry.permissionsOf({ isSuperAdmin: false, roles: [], customPermissions: stored });

  /** What each role carries in the tenant; roles that do not exist there are left out. */
  const carriedBy = async (tenantId: string, roles: string[]): Promise<Map<string, Set<string>>> => {
    const carried = new Map<string, Set<string>>();
    const custom: string[] = [];
    for (const role of new Set(roles)) {
      if (role === 'tenant_admin' || role === 'member') carried.set(role, registry.builtInRole(role));
      else custom.push(role);
    }
    if (custom.length > 0) {
      const rows = await db
        .selectFrom('core.roles')
        .select(['key', 'permissions'])
        .where('tenant_id', '=', tenantId)
        .where('key', 'in', custom)
        .execute();
      for (const row of rows) carried.set(row.key, granted(row.permissions));
    }
    return carried;
  };

  const notHeldError = (what: string, missing: string[], field?: string) =>
    new PlexicaError('PLX_PERMISSION_NOT_HELD', {
      detail: `${what} permissions you do not hold: ${missing.join(', ')}`,
      ...(field !== undefined && { errors: [{ field, message: `${what} ${missing.join(', ')}` }] }),
    });

  /** You may grant, narrow or delete a role only when you hold all it carries and would carry. */
  const assertMayShape = (ctx: RequestContext, key: string, permissions: Iterable<string>) => {
    const missing = registry.notHeld(ctx, permissions);
    if (missing.length > 0) throw notHeldError(`role "${key}" carries`, missing, 'permissions');
  };

  return {
    async list(ctx) {
      registry.authorize(ctx, 'core:role:read');
      const tenant = requireTenant(ctx);
      const custom = await db
        .selectFrom('core.roles')
        .selectAll()
        .where('tenant_id', '=', tenant.id)
        .orderBy('key')
        .execute();
      const builtIn = (['tenant_admin', 'member'] as const).map((key) => ({
        key,
        name: BUILT_IN_NAMES[key]!,
        description: null,
        permissions: [...registry.builtInRole(key)].sort(),
        builtIn: true,
      }));
      return [...builtIn, ...custom.map(toRole)];
    },

    async create(ctx, { key, name, description, permissions }) {
      registry.authorize(ctx, 'core:role:manage');
      const tenant = requireTenant(ctx);
      assertCustom(key);
      registry.assertGrantable(permissions);
      assertMayShape(ctx, key, permissions);
      try {
        const row = await db
          .insertInto('core.roles')
          .values({
            tenant_id: tenant.id,
            key,
            name,
            description: description ?? null,
            permissions: JSON.stringify([...new Set(permissions)].sort()),
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        await audit.record(ctx, { action: 'role.created', targetType: 'role', targetId: key });
        // a role's permissions are resolved into every principal of the tenant that holds it
        await principals.invalidate({ kind: 'tenant', id: tenant.id });
        return toRole(row);
      } catch (err) {
        if (isUniqueViolation(err)) throw new PlexicaError('PLX_ROLE_KEY_TAKEN', { cause: err });
        throw err;
      }
    },

    async update(ctx, key, patch) {
      registry.authorize(ctx, 'core:role:manage');
      const tenant = requireTenant(ctx);
      assertCustom(key);
      if (patch.permissions) registry.assertGrantable(patch.permissions);
      const updated = await inTransaction(db, async (tx) => {
        // locked, so a concurrent edit cannot widen the role between this check and the write
        const current = await tx.db
          .selectFrom('core.roles')
          .select('permissions')
          .where('tenant_id', '=', tenant.id)
          .where('key', '=', key)
          .forUpdate()
          .executeTakeFirst();
        if (!current) throw new PlexicaError('PLX_ROLE_NOT_FOUND');
        // the editor's own role included: core:role:manage never widens beyond what one holds,
        // and a stronger role is not theirs to rename or narrow either
        assertMayShape(ctx, key, [...granted(current.permissions), ...(patch.permissions ?? [])]);
        const row = await tx.db
          .updateTable('core.roles')
          .set({
            ...(patch.name !== undefined && { name: patch.name }),
            ...(patch.description !== undefined && { description: patch.description }),
            ...(patch.permissions !== undefined && {
              permissions: JSON.stringify([...new Set(patch.permissions)].sort()),
            }),
            updated_at: new Date(),
          })
          .where('tenant_id', '=', tenant.id)
          .where('key', '=', key)
          .returningAll()
          .executeTakeFirstOrThrow();
        await audit.record(ctx, { action: 'role.updated', targetType: 'role', targetId: key }, tx);
        return toRole(row);
      });
      await principals.invalidate({ kind: 'tenant', id: tenant.id });
      return updated;
    },

    async remove(ctx, key) {
      registry.authorize(ctx, 'core:role:manage');
      const tenant = requireTenant(ctx);
      assertCustom(key);
      await inTransaction(db, async (tx) => {
        const deleted = await tx.db
          .deleteFrom('core.roles')
          .where('tenant_id', '=', tenant.id)
          .where('key', '=', key)
          .returning('permissions')
          .executeTakeFirst();
        if (!deleted) throw new PlexicaError('PLX_ROLE_NOT_FOUND');
        // deleting takes the role from its holders: only for someone holding all it carries
        // (throwing here rolls the delete back)
        assertMayShape(ctx, key, granted(deleted.permissions));
        await tx.db
          .updateTable('core.users')
          .set({ roles: sql`roles - ${key}` })
          .where('tenant_id', '=', tenant.id)
          .where(sql<boolean>`roles ? ${key}`)
          .execute();
        await audit.record(ctx, { action: 'role.deleted', targetType: 'role', targetId: key }, tx);
      });
      await principals.invalidate({ kind: 'tenant', id: tenant.id });
    },

    async assertAssignable(ctx, roles) {
      const tenant = requireTenant(ctx);
      const carried = await carriedBy(tenant.id, roles);
      const unknown = [...new Set(roles)].filter((r) => !carried.has(r));
      if (unknown.length > 0) {
        throw new PlexicaError('PLX_ROLE_NOT_FOUND', {
          detail: `unknown role(s): ${unknown.join(', ')}`,
          errors: unknown.map((r) => ({ field: 'roles', message: `unknown role "${r}"` })),
        });
      }
      // you may grant only what you hold: a role is assignable when all it carries is held
      const refused = [...carried]
        .map(([role, permissions]) => ({ role, missing: registry.notHeld(ctx, permissions) }))
        .filter(({ missing }) => missing.length > 0);
      if (refused.length > 0) {
        throw new PlexicaError('PLX_PERMISSION_NOT_HELD', {
          detail: refused
            .map(
              ({ role, missing }) =>
                `role "${role}" carries permissions you do not hold: ${missing.join(', ')}`,
            )
            .join('; '),
          errors: refused.map(({ role, missing }) => ({
            field: 'roles',
            message: `role "${role}" carries ${missing.join(', ')}`,
          })),
        });
      }
    },

    async assertHoldsAllOf(ctx, roles, subject) {
      const tenant = requireTenant(ctx);
      const carried = await carriedBy(tenant.id, roles);
      const missing = registry.notHeld(
        ctx,
        [...carried.values()].flatMap((permissions) => [...permissions]),
      );
      if (missing.length > 0) throw notHeldError(`${subject} holds`, missing);
    },
  };
}
