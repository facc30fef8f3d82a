import { type Kysely, type Selectable, sql } from 'kysely';
import type { Logger } from 'pino';
import type { TenantSettings, TenantStatus } from '../../context.js';
import { type RequestContext, systemContext, tenantSchemaName, toTenantRef } from '../../context.js';
import { isUniqueViolation } from '../../infra/database/errors.js';
import { type Executor, prepareQuery } from '../../infra/database/index.js';
import { type Migration, migrateSchema } from '../../infra/database/migrator.js';
import { inTransaction, type Transaction } from '../../infra/database/transaction.js';
import { PlexicaError } from '../../infra/errors.js';
import { UUID } from '../../infra/uuid.js';
import type { TenantLifecycleHook } from '../../module.js';
import type { AuditService } from '../audit/index.js';
import { assertValidSlug } from './slug.js';
import type { TenantsTable, TenantsTables } from './tables.js';

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

/** Settings merged into the current ones; `null` removes an override (the platform default applies). */
export type TenantSettingsPatch = { [K in keyof TenantSettings]?: TenantSettings[K] | null };

/** `current` with `patch` applied: a null takes the setting away. */
function mergeSettings(current: TenantSettings, patch: TenantSettingsPatch): TenantSettings {
  const merged: Record<string, unknown> = { ...current };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete merged[key];
    else if (value !== undefined) merged[key] = value;
  }
  return merged as TenantSettings;
}

export interface TenantPage {
  items: Tenant[];
  total: number;
  limit: number;
  offset: number;
}

export interface TenantsService {
  /**
   * Creates the tenant and its schema; the tenant's audit log starts with `tenant.created`
   * by `actor` (a super admin's request, the CLI's system context by default).
   */
  create(
    input: { slug: string; name: string; settings?: TenantSettings },
    actor?: RequestContext,
  ): Promise<Tenant>;
  list(query: { limit: number; offset: number; status?: TenantStatus }): Promise<TenantPage>;
  get(id: string): Promise<Tenant>;
  /** By id or slug; used for `X-Tenant-ID` and the CLI. */
  find(idOrSlug: string): Promise<Tenant | undefined>;
  /**
   * Renames, suspends/resumes or changes settings, recorded in the tenant's
   * own audit log as `actor` (a super admin's request) in the same transaction.
   * Suspending revokes every session of the tenant's users: their access and
   * refresh tokens stay dead after a resume, which needs new logins. API keys
   * are kept; they are refused while the tenant is suspended.
   */
  update(
    id: string,
    patch: { name?: string; status?: 'active' | 'suspended'; settings?: TenantSettingsPatch },
    actor?: RequestContext,
  ): Promise<Tenant>;
  /**
   * Soft delete: the tenant stops working now and is purged after the retention window.
   * Recorded as `tenant.deleted` by `actor` in its log (kept until the purge).
   */
  remove(id: string, actor?: RequestContext): Promise<Tenant>;
  /** Drops schema and data of tenants past their retention window. @returns purged slugs */
  purgeExpired(now?: Date): Promise<string[]>;
  /** Runs pending tenant migrations on every tenant, each in its own transaction. */
  migrateAll(): Promise<{ migrated: number; failed: { slug: string; error: string }[] }>;
  countActive(): Promise<number>;
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

export interface TenantsServiceOptions {
  db: Kysely<TenantsTables>;
  logger: Logger;
  tenantMigrations: Migration[];
  retentionDays: number;
  hooks?: TenantLifecycleHook[];
  /** Where tenant changes are recorded; tests that build a bare service may omit it. */
  audit?: AuditService;
}

/** `{ field: { from, to } }` for each field `patch` changes. */
function changesOf(before: Record<string, unknown>, after: Record<string, unknown>) {
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (JSON.stringify(before[key]) !== JSON.stringify(after[key]))
      changes[key] = { from: before[key] ?? null, to: after[key] ?? null };
  }
  return changes;
}

export function createTenantsService(options: TenantsServiceOptions): TenantsService {
  const { db, logger, tenantMigrations, retentionDays, hooks = [], audit } = options;

  /**
   * `work` in one transaction whose after-commit steps (the lifecycle event's relay to the
   * bus) cannot fail the call: the tenant change has committed, and an event the engine
   * refused stays in the outbox, which the scheduler's sweep relays. A 503 for a tenant
   * that was created would make the caller retry into PLX_TENANT_SLUG_TAKEN.
   */
  const committing = <T>(work: (tx: Transaction) => Promise<T>) =>
    inTransaction(db, (tx) =>
      work({
        db: tx.db,
        afterCommit: (step) =>
          tx.afterCommit(() =>
            step().catch((err: unknown) =>
              logger.error(
                { err },
                'tenant lifecycle event not handed over at commit; the outbox sweep retries',
              ),
            ),
          ),
      }),
    );

  // every signed URL and every super admin's X-Tenant-ID finds its tenant: planned once
  const byId = prepareQuery('tenants.by_id', (id: string) =>
    db.selectFrom('core.tenants').selectAll().where('id', '=', id),
  );
  const bySlug = prepareQuery('tenants.by_slug', (slug: string) =>
    db.selectFrom('core.tenants').selectAll().where('slug', '=', slug),
  );
  const load = async (id: string) => {
    if (!UUID.test(id)) throw new PlexicaError('PLX_TENANT_NOT_FOUND', { detail: `no tenant ${id}` });
    const row = await db.selectFrom('core.tenants').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new PlexicaError('PLX_TENANT_NOT_FOUND', { detail: `no tenant ${id}` });
    return toTenant(row);
  };

  return {
    async create({ slug, name, settings = {} }, actor = systemContext('tenants.create')) {
      assertValidSlug(slug);
      try {
        return await committing(async (tx) => {
          const row = await (tx.db as Kysely<TenantsTables>)
            .insertInto('core.tenants')
            .values({ slug, name, settings: JSON.stringify(settings) })
            .returningAll()
            .executeTakeFirstOrThrow();
          const tenant = toTenant(row);
          await migrateSchema(tx.db, tenantSchemaName(slug), tenantMigrations);
          for (const hook of hooks) await hook.provision?.(toTenantRef(tenant), tx.db);
          await audit?.record(
            { ...actor, tenant: toTenantRef(tenant) },
            { action: 'tenant.created', targetType: 'tenant', targetId: tenant.id, data: { slug, name } },
            tx,
          );
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
      const [row] = await (UUID.test(idOrSlug) ? byId : bySlug).execute(db as Executor, idOrSlug);
      return row ? toTenant(row) : undefined;
    },

    async update(id, patch, actor = systemContext('tenants.update')) {
      const current = await load(id);
      if (current.status === 'deleted') {
        throw new PlexicaError('PLX_TENANT_DELETED', {
          detail: `tenant ${id} is deleted; it can only be purged`,
        });
      }
      const result = await committing(async (tx) => {
        const trx = tx.db as Kysely<TenantsTables>;
        const row = await trx
          .updateTable('core.tenants')
          .set({
            ...(patch.name !== undefined && { name: patch.name }),
            ...(patch.status !== undefined && { status: patch.status }),
            ...(patch.settings !== undefined && {
              settings: JSON.stringify(mergeSettings(current.settings, patch.settings)),
            }),
            updated_at: new Date(),
          })
          .where('id', '=', id)
          // a concurrent delete wins: a deleted tenant is never brought back by a PATCH
          .where('status', '!=', 'deleted')
          .returningAll()
          .executeTakeFirst();
        if (!row) throw new PlexicaError('PLX_TENANT_DELETED', { detail: `tenant ${id} is deleted` });
        const updated = toTenant(row);
        const suspending = current.status !== 'suspended' && updated.status === 'suspended';
        if (suspending) {
          // every sign-in of the tenant ends now (identity revokes its sessions), so no token
          // issued before the suspension works again after a resume
          for (const hook of hooks) await hook.suspend?.(toTenantRef(updated), trx);
          // IdP tokens have no session to revoke: the verifier refuses those issued before now
          await trx
            .updateTable('core.tenants')
            .set({ tokens_not_before: sql<Date>`now()` })
            .where('id', '=', id)
            .execute();
        }
        const changes = changesOf(
          { name: current.name, status: current.status, ...current.settings },
          { name: updated.name, status: updated.status, ...updated.settings },
        );
        if (audit && Object.keys(changes).length > 0) {
          const resuming = current.status === 'suspended' && updated.status === 'active';
          await audit.record(
            { ...actor, tenant: toTenantRef(updated) },
            {
              action: suspending ? 'tenant.suspended' : resuming ? 'tenant.resumed' : 'tenant.updated',
              targetType: 'tenant',
              targetId: id,
              data: { changes },
            },
            tx,
          );
        }
        return updated;
      });
      for (const hook of hooks) await hook.changed?.(toTenantRef(result));
      return result;
    },

    async remove(id, actor = systemContext('tenants.remove')) {
      const current = await load(id);
      if (current.status === 'deleted') {
        // the tenant is gone for its users (410 inside it); deleting it again is a state conflict
        throw new PlexicaError('PLX_TENANT_STATE_CONFLICT', {
          detail: `tenant ${id} is already deleted; it is purged after ${current.purgeAfter}`,
        });
      }
      const now = new Date();
      const deleted = await committing(async (tx) => {
        const row = await (tx.db as Kysely<TenantsTables>)
          .updateTable('core.tenants')
          .set({
            status: 'deleted',
            deleted_at: now,
            purge_after: new Date(now.getTime() + retentionDays * 86_400_000),
            updated_at: now,
          })
          .where('id', '=', id)
          // two deletes at once: the second finds nothing to delete
          .where('status', '!=', 'deleted')
          .returningAll()
          .executeTakeFirst();
        if (!row)
          throw new PlexicaError('PLX_TENANT_STATE_CONFLICT', { detail: `tenant ${id} is already deleted` });
        const tenant = toTenant(row);
        // the schema stays until the purge, so the deletion is the last entry of the tenant's own log
        await audit?.record(
          { ...actor, tenant: toTenantRef(tenant) },
          {
            action: 'tenant.deleted',
            targetType: 'tenant',
            targetId: id,
            data: { slug: tenant.slug, name: tenant.name, purgeAfter: tenant.purgeAfter },
          },
          tx,
        );
        return tenant;
      });
      for (const hook of hooks) await hook.changed?.(toTenantRef(deleted));
      return deleted;
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
        for (const hook of hooks) await hook.purge?.(toTenantRef(tenant));
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
