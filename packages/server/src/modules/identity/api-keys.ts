import { createHash, randomBytes } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import { type RequestContext, requireTenant } from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import { PlexicaError } from '../../infra/errors.js';
import type { PermissionRegistry } from '../../permissions.js';
import type { AuditService } from '../audit/index.js';
import type { PrincipalCache } from './principal-cache.js';
import type { ApiKeysTable, IdentityTables } from './tables.js';

export interface ApiKey {
  id: string;
  name: string;
  /** Public part, shown in lists so a user can tell keys apart: `plx_<prefix>_…`. */
  prefix: string;
  permissions: string[];
  createdBy: string | null;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export interface ApiKeysService {
  /** @returns the key and its secret, which is never shown again */
  create(
    ctx: RequestContext,
    input: { name: string; permissions: string[]; expiresAt?: string },
  ): Promise<{ key: ApiKey; secret: string }>;
  list(ctx: RequestContext): Promise<ApiKey[]>;
  get(ctx: RequestContext, id: string): Promise<ApiKey>;
  revoke(ctx: RequestContext, id: string): Promise<ApiKey>;
  /**
   * Revokes every live key `userId` created, when the user is disabled or deleted (the check at
   * use refuses such keys anyway; revoking makes the key list say so). @returns how many
   */
  /** Given a transaction, the caller invalidates the user's cached principals after its commit. */
  revokeAllOf(userId: string, db?: Executor): Promise<number>;
}

const KEY_FORMAT = /^plx_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

/** `plx_<12 chars prefix>_<43 chars base64url secret>` → its parts, or undefined. */
export function parseApiKey(token: string): { prefix: string; secret: string } | undefined {
  const match = KEY_FORMAT.exec(token);
  return match ? { prefix: match[1]!, secret: match[2]! } : undefined;
}

const toApiKey = (row: Selectable<ApiKeysTable>): ApiKey => ({
  id: row.id,
  name: row.name,
  prefix: `plx_${row.prefix}`,
  permissions: row.permissions,
  createdBy: row.created_by,
  createdAt: row.created_at.toISOString(),
  expiresAt: row.expires_at ? new Date(row.expires_at).toISOString() : null,
  lastUsedAt: row.last_used_at?.toISOString() ?? null,
  revokedAt: row.revoked_at?.toISOString() ?? null,
});

export function createApiKeysService(options: {
  db: Kysely<IdentityTables>;
  registry: PermissionRegistry;
  audit: AuditService;
  /** Told of every change that makes a resolved principal stale (after it committed). */
  principals: Pick<PrincipalCache, 'invalidate'>;
}): ApiKeysService {
  const { db, registry, audit, principals } = options;

  // ABAC: without core:api-key:manage, a principal sees and revokes only the keys it created
  const ownKeyOnly = (
    _ctx: RequestContext,
    principal: { permissions: ReadonlySet<string>; userId: string | null },
    key: ApiKey,
  ) =>
    principal.permissions.has('core:api-key:manage') ||
    (key.createdBy !== null && key.createdBy === principal.userId);
  registry.addPolicy('core:api-key:read', ownKeyOnly);
  registry.addPolicy('core:api-key:revoke', ownKeyOnly);

  const load = async (ctx: RequestContext, id: string) => {
    const tenant = requireTenant(ctx);
    const row = await db
      .selectFrom('core.api_keys')
      .selectAll()
      .where('id', '=', id)
      .where('tenant_id', '=', tenant.id)
      .executeTakeFirst();
    if (!row) throw new PlexicaError('PLX_API_KEY_NOT_FOUND');
    return toApiKey(row);
  };

  return {
    async create(ctx, { name, permissions, expiresAt }) {
      const tenant = requireTenant(ctx);
      registry.authorize(ctx, 'core:api-key:create');
      registry.assertGrantable(permissions);
      const notHeld = permissions.filter((key) => !ctx.principal?.permissions.has(key));
      if (notHeld.length > 0) {
        throw new PlexicaError('PLX_API_KEY_PERMISSION_NOT_HELD', {
          detail: `not held: ${notHeld.join(', ')}`,
        });
      }
      if (expiresAt && new Date(expiresAt) <= new Date()) {
        throw new PlexicaError('PLX_VALIDATION', {
          detail: 'expiresAt must be in the future',
          errors: [{ field: 'expiresAt', message: 'must be in the future' }],
        });
      }
      const prefix = randomBytes(9)
        .toString('base64url')
        .toLowerCase()
        .replace(/[^a-z0-9]/g, '0')
        .slice(0, 12);
      const secret = randomBytes(32).toString('base64url');
      const row = await db
        .insertInto('core.api_keys')
        .values({
          tenant_id: tenant.id,
          name,
          prefix,
          hash: createHash('sha256').update(secret).digest('hex'),
          permissions: JSON.stringify([...new Set(permissions)].sort()),
          created_by: ctx.principal?.userId ?? null,
          expires_at: expiresAt ?? null,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      const key = toApiKey(row);
      await audit.record(ctx, {
        action: 'api_key.created',
        targetType: 'api_key',
        targetId: key.id,
        data: { name },
      });
      return { key, secret: `plx_${prefix}_${secret}` };
    },

    async list(ctx) {
      const tenant = requireTenant(ctx);
      registry.authorize(ctx, 'core:api-key:read');
      let query = db.selectFrom('core.api_keys').selectAll().where('tenant_id', '=', tenant.id);
      if (!ctx.principal?.permissions.has('core:api-key:manage')) {
        query = query.where(
          'created_by',
          '=',
          ctx.principal?.userId ?? '00000000-0000-0000-0000-000000000000',
        );
      }
      return (await query.orderBy('created_at', 'desc').execute()).map(toApiKey);
    },

    async get(ctx, id) {
      const key = await load(ctx, id);
      registry.authorize(ctx, 'core:api-key:read', key);
      return key;
    },

    async revoke(ctx, id) {
      const key = await load(ctx, id);
      registry.authorize(ctx, 'core:api-key:revoke', key);
      if (key.revokedAt) return key;
      const row = await db
        .updateTable('core.api_keys')
        .set({ revoked_at: new Date() })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await principals.invalidate({ kind: 'api_key', id });
      await audit.record(ctx, { action: 'api_key.revoked', targetType: 'api_key', targetId: id });
      return toApiKey(row);
    },

    async revokeAllOf(userId, trx = db) {
      const result = await trx
        .updateTable('core.api_keys')
        .set({ revoked_at: new Date() })
        .where('created_by', '=', userId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },
  };
}
