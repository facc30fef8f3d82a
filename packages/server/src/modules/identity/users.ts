import type { Kysely, Selectable } from 'kysely';
import { type RequestContext, requireTenant } from '../../context.js';
import { isUniqueViolation } from '../../infra/database/errors.js';
import { prepareQuery } from '../../infra/database/index.js';
import { inTransaction } from '../../infra/database/transaction.js';
import { PlexicaError } from '../../infra/errors.js';
import type { PermissionRegistry } from '../../permissions.js';
import type { AuditService } from '../audit/index.js';
import type { ApiKeysService } from './api-keys.js';
import { assertPasswordPolicy, hashPassword, normalizeEmail } from './passwords.js';
import type { PrincipalCache } from './principal-cache.js';
import type { RolesService } from './roles.js';
import type { SessionsService } from './sessions.js';
import type { IdentityTables, UsersTable } from './tables.js';

export interface User {
  id: string;
  email: string;
  displayName: string | null;
  status: 'active' | 'disabled';
  roles: string[];
  /** Signs in through the tenant's OIDC provider rather than a password. */
  external: boolean;
  createdAt: string;
  updatedAt: string;
  lastLoginAt: string | null;
}

export interface UserPage {
  items: User[];
  total: number;
  limit: number;
  offset: number;
}

export interface CreateUserInput {
  email: string;
  password?: string;
  displayName?: string;
  roles?: string[];
}

export interface UpdateUserInput {
  displayName?: string | null;
  status?: 'active' | 'disabled';
  roles?: string[];
  password?: string;
}

/** Users of the tenant in `ctx`; every query is bound to that tenant. */
export interface UsersService {
  create(ctx: RequestContext, input: CreateUserInput): Promise<User>;
  list(ctx: RequestContext, query: { limit: number; offset: number; email?: string }): Promise<UserPage>;
  get(ctx: RequestContext, id: string): Promise<User>;
  update(ctx: RequestContext, id: string, patch: UpdateUserInput): Promise<User>;
  remove(ctx: RequestContext, id: string): Promise<void>;
  /**
   * Throws unless the user exists in the tenant and the caller holds every permission
   * they hold: what managing someone else's sessions needs (seeing their addresses,
   * ending their sessions), beyond the route's own permission.
   */
  assertManageable(ctx: RequestContext, id: string): Promise<void>;
}

export const toUser = (row: Selectable<UsersTable>): User => ({
  id: row.id,
  email: row.email,
  displayName: row.display_name,
  status: row.status,
  roles: row.roles,
  external: row.external_subject !== null,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
  lastLoginAt: row.last_login_at?.toISOString() ?? null,
});

export function createUsersService(options: {
  db: Kysely<IdentityTables>;
  registry: PermissionRegistry;
  roles: RolesService;
  sessions: SessionsService;
  apiKeys: ApiKeysService;
  audit: AuditService;
  /** Told of every change that makes a resolved principal stale (after it committed). */
  principals: Pick<PrincipalCache, 'invalidate'>;
}): UsersService {
  const { db, registry, roles, sessions, apiKeys, audit, principals } = options;

  // GET /users/{id} and every change start here: planned once
  const byId = prepareQuery('identity.user_by_id', (tenantId: string, id: string) =>
    db.selectFrom('core.users').selectAll().where('id', '=', id).where('tenant_id', '=', tenantId),
  );
  const load = async (tenantId: string, id: string) => {
    const [row] = await byId.execute(db, tenantId, id);
    if (!row) throw new PlexicaError('PLX_USER_NOT_FOUND');
    return row;
  };

  return {
    async create(ctx, { email, password, displayName, roles: userRoles = ['member'] }) {
      registry.authorize(ctx, 'core:user:create');
      const tenant = requireTenant(ctx);
      await roles.assertAssignable(ctx, userRoles);
      if (password !== undefined) assertPasswordPolicy(password);
      try {
        return await inTransaction(db, async (tx) => {
          const row = await tx.db
            .insertInto('core.users')
            .values({
              tenant_id: tenant.id,
              email: email.trim(),
              email_normalized: normalizeEmail(email),
              password_hash: password === undefined ? null : await hashPassword(password),
              display_name: displayName ?? null,
              roles: JSON.stringify([...new Set(userRoles)]),
            })
            .returningAll()
            .executeTakeFirstOrThrow();
          await audit.record(ctx, { action: 'user.created', targetType: 'user', targetId: row.id }, tx);
          return toUser(row);
        });
      } catch (err) {
        if (isUniqueViolation(err, 'users_tenant_email')) {
          throw new PlexicaError('PLX_USER_EMAIL_TAKEN', {
            errors: [{ field: 'email', message: 'already used in this tenant' }],
            cause: err,
          });
        }
        throw err;
      }
    },

    async list(ctx, { limit, offset, email }) {
      registry.authorize(ctx, 'core:user:read');
      const tenant = requireTenant(ctx);
      let query = db.selectFrom('core.users').where('tenant_id', '=', tenant.id);
      if (email) query = query.where('email_normalized', '=', normalizeEmail(email));
      const [rows, count] = await Promise.all([
        query.selectAll().orderBy('created_at').orderBy('id').limit(limit).offset(offset).execute(),
        query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      ]);
      return { items: rows.map(toUser), total: Number(count.n), limit, offset };
    },

    async get(ctx, id) {
      registry.authorize(ctx, 'core:user:read');
      return toUser(await load(requireTenant(ctx).id, id));
    },

    async assertManageable(ctx, id) {
      const target = await load(requireTenant(ctx).id, id);
      await roles.assertHoldsAllOf(ctx, target.roles, `user ${id}`);
    },

    async update(ctx, id, patch) {
      registry.authorize(ctx, 'core:user:update');
      const tenant = requireTenant(ctx);
      const target = await load(tenant.id, id);
      // a user is changed (password, status, roles, name) only by someone holding all they hold
      await roles.assertHoldsAllOf(ctx, target.roles, `user ${id}`);
      if (patch.roles) await roles.assertAssignable(ctx, patch.roles);
      if (patch.password !== undefined) assertPasswordPolicy(patch.password);
      const passwordHash = patch.password === undefined ? undefined : await hashPassword(patch.password);
      const updated = await inTransaction(db, async (tx) => {
        const row = await tx.db
          .updateTable('core.users')
          .set({
            ...(patch.displayName !== undefined && { display_name: patch.displayName }),
            ...(patch.status !== undefined && { status: patch.status }),
            ...(patch.roles !== undefined && { roles: JSON.stringify([...new Set(patch.roles)]) }),
            ...(passwordHash !== undefined && { password_hash: passwordHash }),
            updated_at: new Date(),
          })
          .where('id', '=', id)
          .where('tenant_id', '=', tenant.id)
          .returningAll()
          .executeTakeFirstOrThrow();
        // a new password or a disabled account ends every session; disabling also ends the
        // user's API keys, for good (enabling the user again does not bring them back)
        if (passwordHash !== undefined || patch.status === 'disabled') await sessions.revokeAll(id, tx.db);
        const revokedApiKeys = patch.status === 'disabled' ? await apiKeys.revokeAllOf(id, tx.db) : 0;
        await audit.record(
          ctx,
          {
            action: 'user.updated',
            targetType: 'user',
            targetId: id,
            data: { fields: Object.keys(patch).sort(), ...(revokedApiKeys > 0 && { revokedApiKeys }) },
          },
          tx,
        );
        return toUser(row);
      });
      // roles, status or password: every principal resolved for this user (and their keys)
      await principals.invalidate({ kind: 'user', id });
      return updated;
    },

    async remove(ctx, id) {
      registry.authorize(ctx, 'core:user:delete');
      const tenant = requireTenant(ctx);
      const target = await load(tenant.id, id);
      await roles.assertHoldsAllOf(ctx, target.roles, `user ${id}`);
      await inTransaction(db, async (tx) => {
        // the keys stay, revoked and with created_by set to null by the foreign key, for the record
        const revokedApiKeys = await apiKeys.revokeAllOf(id, tx.db);
        await tx.db
          .deleteFrom('core.users')
          .where('id', '=', id)
          .where('tenant_id', '=', tenant.id)
          .execute();
        await audit.record(
          ctx,
          {
            action: 'user.deleted',
            targetType: 'user',
            targetId: id,
            ...(revokedApiKeys > 0 && { data: { revokedApiKeys } }),
          },
          tx,
        );
      });
      await principals.invalidate({ kind: 'user', id });
    },
  };
}
