import type { Kysely } from 'kysely';
import type { TenantRef } from '../../context.js';
import type { Executor } from './index.js';

/**
 * `executor` (the database or a transaction) addressing the tenant's own
 * schema, typed with the caller's tenant tables. Every tenant query goes
 * through this: never a session-level `search_path`.
 *
 * @example tenantScope<StorageTenantTables>(trx, tenant).selectFrom('files')
 */
export function tenantScope<T>(executor: Executor, tenant: Pick<TenantRef, 'schema'>): Kysely<T> {
  const typed: Kysely<T> = executor;
  return typed.withSchema(tenant.schema);
}
