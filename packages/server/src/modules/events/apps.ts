import type { Kysely, Selectable } from 'kysely';
import { type RequestContext, requireTenant } from '../../context.js';
import { isUniqueViolation } from '../../infra/database/errors.js';
import type { Executor } from '../../infra/database/index.js';
import { PlexicaError } from '../../infra/errors.js';
import { UUID } from '../../infra/uuid.js';
import type { AppsTable, EventsTables } from './tables.js';

/** seed 002: a client application of a tenant; what it publishes carries `/apps/{id}` as its source. */
export interface App {
  id: string;
  name: string;
  description: string | null;
  source: string;
  createdAt: string;
  updatedAt: string;
}

export interface AppsService {
  create(ctx: RequestContext, input: { name: string; description?: string }): Promise<App>;
  list(ctx: RequestContext, page: { limit: number; offset: number }): Promise<App[]>;
  /** The app in the context's tenant; another tenant's is `PLX_APP_NOT_FOUND`, as a missing one. */
  get(ctx: RequestContext, id: string): Promise<App>;
  update(
    ctx: RequestContext,
    id: string,
    input: { name?: string; description?: string | null },
  ): Promise<App>;
  remove(ctx: RequestContext, id: string): Promise<void>;
}

export const appSource = (id: string) => `/apps/${id}`;

const toApp = (row: Selectable<AppsTable>): App => ({
  id: row.id,
  name: row.name,
  description: row.description,
  source: appSource(row.id),
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
});

export function createAppsService(executor: Executor): AppsService {
  const db: Kysely<EventsTables> = executor;
  const notFound = (id: string) =>
    new PlexicaError('PLX_APP_NOT_FOUND', { detail: `no app ${id.slice(0, 40)}` });
  const taken = (cause: unknown) =>
    new PlexicaError('PLX_APP_NAME_TAKEN', { detail: 'an app of this tenant has this name', cause });
  const get = async (ctx: RequestContext, id: string) => {
    const tenant = requireTenant(ctx);
    if (!UUID.test(id)) throw notFound(id);
    const row = await db
      .selectFrom('core.apps')
      .selectAll()
      .where('tenant_id', '=', tenant.id)
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) throw notFound(id);
    return toApp(row);
  };
  return {
    async create(ctx, input) {
      const tenant = requireTenant(ctx);
      try {
        const row = await db
          .insertInto('core.apps')
          .values({
            tenant_id: tenant.id,
            name: input.name,
            description: input.description ?? null,
            created_by: ctx.principal?.userId ?? null,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        return toApp(row);
      } catch (err) {
        if (isUniqueViolation(err)) throw taken(err);
        throw err;
      }
    },
    async list(ctx, page) {
      const tenant = requireTenant(ctx);
      const rows = await db
        .selectFrom('core.apps')
        .selectAll()
        .where('tenant_id', '=', tenant.id)
        .orderBy('created_at')
        .orderBy('id')
        .limit(page.limit)
        .offset(page.offset)
        .execute();
      return rows.map(toApp);
    },
    get,
    async update(ctx, id, input) {
      const app = await get(ctx, id);
      try {
        const row = await db
          .updateTable('core.apps')
          .set({
            ...(input.name !== undefined && { name: input.name }),
            ...(input.description !== undefined && { description: input.description }),
            updated_at: new Date(),
          })
          .where('id', '=', app.id)
          .returningAll()
          .executeTakeFirstOrThrow();
        return toApp(row);
      } catch (err) {
        if (isUniqueViolation(err)) throw taken(err);
        throw err;
      }
    },
    async remove(ctx, id) {
      const app = await get(ctx, id);
      await db.deleteFrom('core.apps').where('id', '=', app.id).execute();
    },
  };
}
