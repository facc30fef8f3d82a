import type { Kysely, Selectable } from 'kysely';
import { sql } from 'kysely';
import { type RequestContext, requireTenant } from '../../context.js';
import { isUniqueViolation } from '../../infra/database/errors.js';
import type { CoreDatabase } from '../../infra/database/index.js';
import type { RolesTable } from '../../infra/database/tables.js';
import { PlexicaError } from '../../infra/errors.js';
import type { AuditService } from '../audit/service.js';
import { BUILT_IN_ROLES, type PermissionRegistry } from '../permissions/registry.js';

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
  /** Roles a tenant user may be given: tenant_admin, member and the tenant's custom roles. */
  assertAssignable(ctx: RequestContext, roles: string[]): Promise<void>;
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
  db: Kysely<CoreDatabase>;
  registry: PermissionRegistry;
  audit: AuditService;
}): RolesService {
  const { db, registry, audit } = options;

  const assertCustom = (key: string) => {
    if ((BUILT_IN_ROLES as readonly string[]).includes(key)) {
      throw new PlexicaError('PLX_ROLE_BUILTIN', { detail: `${key} is a built-in role` });
    }
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
      const row = await db
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
        .executeTakeFirst();
      if (!row) throw new PlexicaError('PLX_ROLE_NOT_FOUND');
      await audit.record(ctx, { action: 'role.updated', targetType: 'role', targetId: key });
      return toRole(row);
    },

    async remove(ctx, key) {
      registry.authorize(ctx, 'core:role:manage');
      const tenant = requireTenant(ctx);
      assertCustom(key);
      await db.transaction().execute(async (trx) => {
        const deleted = await trx
          .deleteFrom('core.roles')
          .where('tenant_id', '=', tenant.id)
          .where('key', '=', key)
          .executeTakeFirst();
        if (Number(deleted.numDeletedRows) === 0) throw new PlexicaError('PLX_ROLE_NOT_FOUND');
        await trx
          .updateTable('core.users')
          .set({ roles: sql`roles - ${key}` })
          .where('tenant_id', '=', tenant.id)
          .where(sql<boolean>`roles ? ${key}`)
          .execute();
        await audit.record(ctx, { action: 'role.deleted', targetType: 'role', targetId: key }, trx);
      });
    },

    async assertAssignable(ctx, roles) {
      const tenant = requireTenant(ctx);
      const custom = roles.filter((r) => r !== 'tenant_admin' && r !== 'member');
      const found =
        custom.length === 0
          ? []
          : await db
              .selectFrom('core.roles')
              .select('key')
              .where('tenant_id', '=', tenant.id)
              .where('key', 'in', custom)
              .execute();
      const known = new Set(found.map((r) => r.key));
      const unknown = custom.filter((r) => !known.has(r));
      if (unknown.length > 0) {
        throw new PlexicaError('PLX_ROLE_NOT_FOUND', {
          detail: `unknown role(s): ${unknown.join(', ')}`,
          errors: unknown.map((r) => ({ field: 'roles', message: `unknown role "${r}"` })),
        });
      }
    },
  };
}
