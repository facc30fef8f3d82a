import type { Executor } from '../infra/database/index.js';
import { type Migration, migrateSchema } from '../infra/database/migrator.js';
import { idempotencyMigrations } from '../infra/idempotency.js';
import { MODULES } from '../modules/index.js';

/** Migrations of the `core` schema in the order they apply: the kernel's, then each module's in list order. */
export const CORE_MIGRATIONS: Migration[] = [
  ...idempotencyMigrations,
  ...MODULES.flatMap((m): Migration[] => m.coreMigrations ?? []),
];
/** Migrations of every `tenant_{slug}` schema, in module order. */
export const TENANT_MIGRATIONS: Migration[] = MODULES.flatMap((m): Migration[] => m.tenantMigrations ?? []);

/** Applies pending `core` migrations in one transaction. @returns ids applied */
export const migrateCore = (db: Executor): Promise<string[]> =>
  db.transaction().execute((trx) => migrateSchema(trx, 'core', CORE_MIGRATIONS));
