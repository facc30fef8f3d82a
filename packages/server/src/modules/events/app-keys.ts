import type { Kysely } from 'kysely';
import { type RequestContext, requireTenant } from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import { PlexicaError } from '../../infra/errors.js';
import type { ApiKey, ApiKeysService } from '../identity/index.js';
import type { AppsService } from './apps.js';
import type { EventsTables } from './tables.js';

/**
 * API keys that belong to an app (seed 002's publishing applications): made
 * through the identity module's API keys, bound here, so what such a key
 * publishes carries the app as its source and it cannot publish as another app.
 */
export function createAppKeys(deps: { db: Executor; apps: AppsService; apiKeys: ApiKeysService }) {
  const db: Kysely<EventsTables> = deps.db;
  const { apps, apiKeys } = deps;
  return {
    async create(
      ctx: RequestContext,
      appId: string,
      input: { name: string; permissions: string[]; expiresAt?: string },
    ): Promise<{ key: ApiKey; secret: string; appId: string }> {
      const app = await apps.get(ctx, appId);
      const created = await apiKeys.create(ctx, input);
      try {
        await db
          .insertInto('core.app_api_keys')
          .values({ api_key_id: created.key.id, app_id: app.id, tenant_id: requireTenant(ctx).id })
          .execute();
      } catch (err) {
        // a key that belongs to no app must not outlive the failed binding
        await apiKeys.revoke(ctx, created.key.id);
        throw err;
      }
      return { ...created, appId: app.id };
    },
    async list(ctx: RequestContext, appId: string): Promise<ApiKey[]> {
      const app = await apps.get(ctx, appId);
      const bound = await db
        .selectFrom('core.app_api_keys')
        .select('api_key_id')
        .where('app_id', '=', app.id)
        .execute();
      const ids = new Set(bound.map((b) => b.api_key_id));
      return (await apiKeys.list(ctx)).filter((k) => ids.has(k.id));
    },
    /** Refuses a caller whose API key belongs to another app than `appId`. */
    async assertMayPublishAs(ctx: RequestContext, appId: string): Promise<void> {
      if (ctx.principal?.type !== 'api_key') return;
      const bound = await db
        .selectFrom('core.app_api_keys')
        .select('app_id')
        .where('api_key_id', '=', ctx.principal.id)
        .executeTakeFirst();
      if (bound && bound.app_id !== appId)
        throw new PlexicaError('PLX_APP_KEY_MISMATCH', {
          detail: `this API key belongs to app ${bound.app_id} and publishes as that app only`,
        });
    },
  };
}

export type AppKeys = ReturnType<typeof createAppKeys>;
