import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { type RequestContext, systemContext, toTenantRef } from '../../context.js';
import { inTransaction } from '../../infra/database/transaction.js';
import { PlexicaError } from '../../infra/errors.js';
import type { AuditService } from '../audit/index.js';
import type { TenantsService } from '../tenants/index.js';
import { assertPasswordPolicy, hashPassword, normalizeEmail, verifyPassword } from './passwords.js';
import type { PrincipalCache } from './principal-cache.js';
import type { SessionsService } from './sessions.js';
import type { IdentityTables } from './tables.js';

/** Passwords changed by their owner, and reset by the operator when lost. */
export interface PasswordChangesService {
  /**
   * The caller changes their own password, proving the current one: any user,
   * no permission needed (a member holds no `core:user:update`). Every other
   * session of theirs ends; the one making the change stays signed in.
   */
  changeOwn(ctx: RequestContext, input: { currentPassword: string; newPassword: string }): Promise<void>;
  /**
   * Operator recovery (`plexica admin reset-password`): a new generated password
   * for the super admin (or, with `tenant`, the tenant user) with `email`; every
   * session of that user ends. @returns the password, to be shown once
   */
  reset(email: string, tenant?: string): Promise<{ userId: string; password: string }>;
}

type User = { id: string; tenant_id: string | null };

export function createPasswordChangesService(options: {
  db: Kysely<IdentityTables>;
  sessions: SessionsService;
  tenants: TenantsService;
  audit: AuditService;
  principals: Pick<PrincipalCache, 'invalidate'>;
}): PasswordChangesService {
  const { db, sessions, tenants, audit, principals } = options;

  /** Sets the hash and ends the sessions; a tenant user's change goes to the tenant's audit log. */
  const store = async (ctx: RequestContext, user: User, hash: string, exceptSessionId?: string) => {
    await inTransaction(db, async (tx) => {
      const userId = user.id;
      await tx.db
        .updateTable('core.users')
        .set({ password_hash: hash, updated_at: new Date() })
        .where('id', '=', userId)
        .execute();
      await sessions.revokeAll(userId, tx.db, exceptSessionId);
      // a super admin has no tenant log (a super admin acting in a tenant changes their own password)
      if (!user.tenant_id || ctx.tenant?.id !== user.tenant_id) return;
      await audit.record(
        ctx,
        { action: 'user.password_changed', targetType: 'user', targetId: userId, data: {} },
        tx,
      );
    });
    // the ended sessions' cached principals, on every instance, once the change committed
    await principals.invalidate({ kind: 'user', id: user.id });
  };

  return {
    async changeOwn(ctx, { currentPassword, newPassword }) {
      const principal = ctx.principal;
      if (principal?.type !== 'user' || !principal.userId) {
        throw new PlexicaError('PLX_PERMISSION_DENIED', { detail: 'API keys have no password to change' });
      }
      const user = await db
        .selectFrom('core.users')
        .select(['id', 'tenant_id', 'password_hash'])
        .where('id', '=', principal.userId)
        .executeTakeFirst();
      if (!user?.password_hash) {
        throw new PlexicaError('PLX_PASSWORD_NOT_SET', {
          detail: 'this account signs in through its identity provider and has no password here',
        });
      }
      if (!(await verifyPassword(user.password_hash, currentPassword))) {
        throw new PlexicaError('PLX_CURRENT_PASSWORD_INVALID', {
          errors: [{ field: 'currentPassword', message: 'is not the current password' }],
        });
      }
      assertPasswordPolicy(newPassword, 'newPassword');
      await store(ctx, user, await hashPassword(newPassword), principal.sessionId ?? undefined);
    },

    async reset(email, tenantSlug) {
      const tenant = tenantSlug === undefined ? undefined : await tenants.find(tenantSlug);
      if (tenantSlug !== undefined && !tenant) {
        throw new PlexicaError('PLX_TENANT_NOT_FOUND', { detail: `no tenant ${tenantSlug}` });
      }
      let query = db
        .selectFrom('core.users')
        .select(['id', 'tenant_id'])
        .where('email_normalized', '=', normalizeEmail(email));
      query = tenant ? query.where('tenant_id', '=', tenant.id) : query.where('tenant_id', 'is', null);
      const user = await query.executeTakeFirst();
      if (!user) {
        throw new PlexicaError('PLX_USER_NOT_FOUND', {
          detail: tenant
            ? `no user ${email} in tenant ${tenant.slug}`
            : `no platform user ${email} (a tenant user? add --tenant)`,
        });
      }
      const password = randomBytes(18).toString('base64url');
      const ctx = systemContext('cli:admin-reset-password', tenant ? toTenantRef(tenant) : null);
      await store(ctx, user, await hashPassword(password));
      return { userId: user.id, password };
    },
  };
}
