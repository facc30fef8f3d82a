import type { Kysely, Selectable } from 'kysely';
import { type RequestContext, requireTenant } from '../../context.js';
import { inTransaction } from '../../infra/database/transaction.js';
import { PlexicaError } from '../../infra/errors.js';
import type { PermissionRegistry } from '../../permissions.js';
import type { AuditService } from '../audit/index.js';
import type { OidcVerifier } from './oidc.js';
import type { RolesService } from './roles.js';
import type { IdentityOrigin, IdentityTables, UserIdentitiesTable } from './tables.js';

/** An identity provider subject that signs in as a tenant user. */
export interface IdentityLink {
  id: string;
  userId: string;
  issuer: string;
  subject: string;
  /** `jit`: the IdP created the user; `link`: linked explicitly; `legacy`: from before 0007, not usable until linked. */
  origin: IdentityOrigin;
  linkedBy: string | null;
  createdAt: string;
  lastLoginAt: string | null;
}

/**
 * Explicit links between a tenant's accounts and its identity provider's
 * subjects (issue 9 item 1): a sign-in never attaches itself to an account by
 * email, so a password account reaches SSO only through one of these.
 */
export interface IdentityLinksService {
  /** All links with `core:identity-link:manage`; otherwise the caller's own. */
  list(ctx: RequestContext, query: { userId?: string }): Promise<IdentityLink[]>;
  /** An admin links `subject` of the tenant's issuer to a user at most as strong as themselves. */
  link(ctx: RequestContext, input: { userId: string; subject: string }): Promise<IdentityLink>;
  /** The caller links their own account to the subject of `token`, a valid token of the tenant's IdP. */
  linkSelf(ctx: RequestContext, token: string): Promise<IdentityLink>;
  /** Own links may be removed by their user; others' need the permission. */
  unlink(ctx: RequestContext, id: string): Promise<void>;
}

export const LINK_PERMISSION = 'core:identity-link:manage';

const toLink = (row: Selectable<UserIdentitiesTable>): IdentityLink => ({
  id: row.id,
  userId: row.user_id,
  issuer: row.issuer,
  subject: row.subject,
  origin: row.origin,
  linkedBy: row.linked_by,
  createdAt: row.created_at.toISOString(),
  lastLoginAt: row.last_login_at?.toISOString() ?? null,
});

export function createIdentityLinksService(options: {
  db: Kysely<IdentityTables>;
  registry: PermissionRegistry;
  roles: RolesService;
  audit: AuditService;
  verifier: OidcVerifier;
}): IdentityLinksService {
  const { db, registry, roles, audit, verifier } = options;

  const ownUser = (ctx: RequestContext) => {
    const principal = ctx.principal;
    if (principal?.type !== 'user' || !principal.userId) {
      throw new PlexicaError('PLX_PERMISSION_DENIED', {
        detail: 'only a signed-in user may link their own account',
      });
    }
    return principal.userId;
  };

  const mayManage = (ctx: RequestContext) => ctx.principal?.permissions.has(LINK_PERMISSION) ?? false;

  const userIn = async (tenantId: string, userId: string) => {
    const user = await db
      .selectFrom('core.users')
      .select(['id', 'roles'])
      .where('tenant_id', '=', tenantId)
      .where('id', '=', userId)
      .executeTakeFirst();
    if (!user) throw new PlexicaError('PLX_USER_NOT_FOUND');
    return user;
  };

  const store = async (
    ctx: RequestContext,
    input: { tenantId: string; userId: string; issuer: string; subject: string },
  ): Promise<IdentityLink> =>
    inTransaction(db, async (tx) => {
      const existing = await tx.db
        .selectFrom('core.user_identities')
        .selectAll()
        .where('tenant_id', '=', input.tenantId)
        .where('issuer', '=', input.issuer)
        .where('subject', '=', input.subject)
        .forUpdate()
        .executeTakeFirst();
      // confirming a legacy attachment of the same account turns it into a link
      if (existing && !(existing.origin === 'legacy' && existing.user_id === input.userId)) {
        throw new PlexicaError('PLX_OIDC_IDENTITY_LINKED');
      }
      const values = { origin: 'link' as const, linked_by: ctx.principal?.userId ?? null };
      const row = existing
        ? await tx.db
            .updateTable('core.user_identities')
            .set(values)
            .where('id', '=', existing.id)
            .returningAll()
            .executeTakeFirstOrThrow()
        : await tx.db
            .insertInto('core.user_identities')
            .values({
              tenant_id: input.tenantId,
              user_id: input.userId,
              issuer: input.issuer,
              subject: input.subject,
              ...values,
            })
            .onConflict((oc) => oc.constraint('user_identities_subject').doNothing())
            .returningAll()
            .executeTakeFirst();
      if (!row) throw new PlexicaError('PLX_OIDC_IDENTITY_LINKED');
      await audit.record(
        ctx,
        {
          action: 'user.identity_linked',
          targetType: 'user',
          targetId: input.userId,
          data: { issuer: input.issuer, subject: input.subject },
        },
        tx,
      );
      return toLink(row);
    });

  return {
    async list(ctx, query) {
      const tenant = requireTenant(ctx);
      let userId = query.userId;
      if (!mayManage(ctx)) {
        const own = ownUser(ctx);
        if (userId !== undefined && userId !== own) registry.authorize(ctx, LINK_PERMISSION);
        userId = own;
      }
      let select = db
        .selectFrom('core.user_identities')
        .selectAll()
        .where('tenant_id', '=', tenant.id)
        .orderBy('created_at')
        .orderBy('id');
      if (userId !== undefined) select = select.where('user_id', '=', userId);
      return (await select.execute()).map(toLink);
    },

    async link(ctx, input) {
      registry.authorize(ctx, LINK_PERMISSION);
      const tenant = requireTenant(ctx);
      const user = await userIn(tenant.id, input.userId);
      const provider = await db
        .selectFrom('core.identity_providers')
        .select('issuer')
        .where('tenant_id', '=', tenant.id)
        .executeTakeFirst();
      if (!provider) throw new PlexicaError('PLX_OIDC_NOT_CONFIGURED');
      // whoever holds the subject becomes this user: only someone at least as strong may say so
      await roles.assertHoldsAllOf(ctx, user.roles, `user ${user.id}`);
      return store(ctx, {
        tenantId: tenant.id,
        userId: user.id,
        issuer: provider.issuer,
        subject: input.subject,
      });
    },

    async linkSelf(ctx, token) {
      const tenant = requireTenant(ctx);
      const userId = ownUser(ctx);
      // the token proves the caller holds the subject; the session proves they hold the account
      const { issuer, subject } = await verifier.verifyForTenant(token, tenant.id);
      return store(ctx, { tenantId: tenant.id, userId, issuer, subject });
    },

    async unlink(ctx, id) {
      const tenant = requireTenant(ctx);
      const row = await db
        .selectFrom('core.user_identities')
        .selectAll()
        .where('tenant_id', '=', tenant.id)
        .where('id', '=', id)
        .executeTakeFirst();
      const own = ctx.principal?.type === 'user' && row?.user_id === ctx.principal.userId;
      if (!own) {
        registry.authorize(ctx, LINK_PERMISSION);
        if (!row) throw new PlexicaError('PLX_OIDC_IDENTITY_NOT_FOUND');
        const user = await userIn(tenant.id, row.user_id);
        await roles.assertHoldsAllOf(ctx, user.roles, `user ${user.id}`);
      }
      if (!row) throw new PlexicaError('PLX_OIDC_IDENTITY_NOT_FOUND');
      await inTransaction(db, async (tx) => {
        await tx.db.deleteFrom('core.user_identities').where('id', '=', row.id).execute();
        await audit.record(
          ctx,
          {
            action: 'user.identity_unlinked',
            targetType: 'user',
            targetId: row.user_id,
            data: { issuer: row.issuer, subject: row.subject },
          },
          tx,
        );
      });
    },
  };
}
