import type { Kysely, Selectable } from 'kysely';
import type { Logger } from 'pino';
import type { TenantRef } from '../../context.js';
import { isUniqueViolation } from '../../infra/database/errors.js';
import type { CoreDatabase } from '../../infra/database/index.js';
import { type Migration, migrateSchema } from '../../infra/database/migrator.js';
import type { TenantSettings, TenantStatus, TenantsTable } from '../../infra/database/tables.js';
import { PlexicaError } from '../../infra/errors.js';
import { assertValidSlug, tenantSchemaName } from './slug.js';

export interface Tenant {
  id: string;
  slug: string;
  name: string;
  status: TenantStatus;
  settings: TenantSettings;
  createdAt: string;
  updatedAt: string;
  deletedAt: string | null;
  purgeAfter: string | null;
}

export interface TenantPage {
  items: Tenant[];
  total: number;
  limit: number;
  offset: number;
}

/**
 * Work another module does when a tenant is created or purged (storage
 * buckets, queues…). `provision` runs inside the creating transaction: if it
 * throws, nothing of the tenant remains.
 */
export interface TenantLifecycleHook {
  name: string;
  provision?(tenant: Tenant, trx: Kysely<CoreDatabase>): Promise<void>;
  purge?(tenant: Tenant): Promise<void>;
}

export interface TenantsService {
  create(input: { slug: string; name: string; settings?: TenantSettings }): Promise<Tenant>;
  list(query: { limit: number; offset: number; status?: TenantStatus }): Promise<TenantPage>;
  get(id: string): Promise<Tenant>;
  /** By id or slug; used for `X-Tenant-ID` and the CLI. */
  find(idOrSlug: string): Promise<Tenant | undefined>;
  update(
    id: string,
    patch: { name?: string; status?: 'active' | 'suspended'; settings?: TenantSettings },
  ): Promise<Tenant>;
  /** Soft delete: the tenant stops working now and is purged after the retention window. */
  remove(id: string): Promise<Tenant>;
  /** Drops schema and data of tenants past their retention window. @returns purged slugs */
  purgeExpired(now?: Date): Promise<string[]>;
  /** Runs pending tenant migrations on every tenant, each in its own transaction. */
  migrateAll(): Promise<{ migrated: number; failed: { slug: string; error: string }[] }>;
  countActive(): Promise<number>;
}

export const toTenantRef = (t: Pick<Tenant, 'id' | 'slug' | 'settings'>): TenantRef => ({
  id: t.id,
  slug: t.slug,
  schema: tenantSchemaName(t.slug),
  settings: t.settings,
});

/** Why a tenant in `status` cannot be used (suspended or deleted), or undefined when it can. */
export function tenantUnusableError(status: TenantStatus | null | undefined): PlexicaError | undefined {
  if (status === 'suspended') return new PlexicaError('PLX_TENANT_SUSPENDED');
  if (status === 'deleted') return new PlexicaError('PLX_TENANT_DELETED');
  return undefined;
}

export function assertTenantUsable(status: TenantStatus | null | undefined): void {
  const error = tenantUnusableError(status);
  if (error) throw error;
}

const toTenant = (row: Selectable<TenantsTable>): Tenant => ({
  id: row.id,
  slug: row.slug,
  name: row.name,
  status: row.status,
  settings: row.settings,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
  deletedAt: row.deleted_at?.toISOString() ?? null,
  purgeAfter: row.purge_after?.toISOString() ?? null,
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface TenantsServiceOptions {
  db: Kysely<CoreDatabase>;
  logger: Logger;
  tenantMigrations: Migration[];
  retentionDays: number;
  hooks?: TenantLifecycleHook[];
}

export function createTenantsService(options: TenantsServiceOptions): TenantsService {
  const { db, logger, tenantMigrations, retentionDays, hooks = [] } = options;

  const load = async (id: string) => {
    if (!UUID.test(id)) throw new PlexicaError('PLX_TENANT_NOT_FOUND', { detail: `no tenant ${id}` });
    const row = await db.selectFrom('core.tenants').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new PlexicaError('PLX_TENANT_NOT_FOUND', { detail: `no tenant ${id}` });
    return toTenant(row);
  };

  return {
    async create({ slug, name, settings = {} }) {
      assertValidSlug(slug);
      try {
        return await db.transaction().execute(async (trx) => {
          const row = await trx
            .insertInto('core.tenants')
            .values({ slug, name, settings: JSON.stringify(settings) })
            .returningAll()
            .executeTakeFirstOrThrow();
          const tenant = toTenant(row);
          await migrateSchema(trx, tenantSchemaName(slug), tenantMigrations);
          for (const hook of hooks) await hook.provision?.(tenant, trx);
          return tenant;
        });
      } catch (err) {
        if (isUniqueViolation(err)) {
          throw new PlexicaError('PLX_TENANT_SLUG_TAKEN', {
            detail: `slug "${slug}" is taken`,
            errors: [{ field: 'slug', message: 'already taken' }],
            cause: err,
          });
        }
        if (err instanceof PlexicaError) throw err;
        throw new PlexicaError('PLX_TENANT_PROVISIONING_FAILED', {
          detail: `provisioning tenant "${slug}" failed and was rolled back`,
          cause: err,
        });
      }
    },

    async list({ limit, offset, status }) {
      let query = db.selectFrom('core.tenants');
      if (status) query = query.where('status', '=', status);
      const [rows, count] = await Promise.all([
        query.selectAll().orderBy('created_at').orderBy('id').limit(limit).offset(offset).execute(),
        query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      ]);
      return { items: rows.map(toTenant), total: Number(count.n), limit, offset };
    },

    get: load,

    async find(idOrSlug) {
      const row = await db
        .selectFrom('core.tenants')
        .selectAll()
        .where(UUID.test(idOrSlug) ? 'id' : 'slug', '=', idOrSlug)
        .executeTakeFirst();
      return row ? toTenant(row) : undefined;
    },

    async update(id, patch) {
      const current = await load(id);
      if (current.status === 'deleted') {
        throw new PlexicaError('PLX_TENANT_DELETED', {
          detail: `tenant ${id} is deleted; it can only be purged`,
        });
      }
      const row = await db
        .updateTable('core.tenants')
        .set({
          ...(patch.name !== undefined && { name: patch.name }),
          ...(patch.status !== undefined && { status: patch.status }),
          ...(patch.settings !== undefined && {
            settings: JSON.stringify({ ...current.settings, ...patch.settings }),
          }),
          updated_at: new Date(),
        })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      return toTenant(row);
    },

    async remove(id) {
      const current = await load(id);
      if (current.status === 'deleted') {
        throw new PlexicaError('PLX_TENANT_DELETED', { detail: `tenant ${id} is already deleted` });
      }
      const now = new Date();
      const row = await db
        .updateTable('core.tenants')
        .set({
          status: 'deleted',
          deleted_at: now,
          purge_after: new Date(now.getTime() + retentionDays * 86_400_000),
          updated_at: now,
        })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      return toTenant(row);
    },

    async purgeExpired(now = new Date()) {
      const due = await db
        .selectFrom('core.tenants')
        .selectAll()
        .where('status', '=', 'deleted')
        .where('purge_after', '<=', now)
        .execute();
      const purged: string[] = [];
      for (const row of due) {
        const tenant = toTenant(row);
        // external resources first: if a hook fails, the row stays and the next run retries
        for (const hook of hooks) await hook.purge?.(tenant);
        await db.transaction().execute(async (trx) => {
          await trx.schema.dropSchema(tenantSchemaName(tenant.slug)).ifExists().cascade().execute();
          await trx.deleteFrom('core.tenants').where('id', '=', tenant.id).execute();
        });
        logger.info({ tenant: tenant.slug }, 'purged deleted tenant');
        purged.push(tenant.slug);
      }
      return purged;
    },

    async migrateAll() {
      const tenants = await db
        .selectFrom('core.tenants')
        .select(['id', 'slug'])
        .orderBy('created_at')
        .execute();
      const failed: { slug: string; error: string }[] = [];
      let migrated = 0;
      for (const { slug } of tenants) {
        try {
          await db
            .transaction()
            .execute((trx) => migrateSchema(trx, tenantSchemaName(slug), tenantMigrations));
          migrated += 1;
        } catch (err) {
          // one tenant's failure rolls back that tenant only; the others go on
          logger.error({ err, tenant: slug }, 'tenant migration failed');
          failed.push({ slug, error: (err as Error).message });
        }
      }
      return { migrated, failed };
    },

    async countActive() {
      const row = await db
        .selectFrom('core.tenants')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('status', '=', 'active')
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
  };
}
