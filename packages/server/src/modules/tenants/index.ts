import type { Logger } from 'pino';
import type { Executor } from '../../infra/database/index.js';
import type { Migration } from '../../infra/database/migrator.js';
import type { ModuleDefinition, PlexicaModule, TenantLifecycleHook } from '../../module.js';
import type { AuditService } from '../audit/index.js';
import { type TenantsConfig, tenantsOptions } from './config.js';
import { tenantsMigrations } from './migrations.js';
import { tenantRoutes } from './routes.js';
import { createTenantsService, type TenantsService } from './service.js';

export type { TenantsConfig } from './config.js';
export type { Tenant, TenantPage, TenantSettingsPatch, TenantsService } from './service.js';
export type { TenantsTable, TenantsTables } from './tables.js';

/** Tenants: `core.tenants`, one schema per tenant, lifecycle and retention (seed 003). */
export const tenantsModule: ModuleDefinition<TenantsConfig> = {
  name: 'tenants',
  config: { options: tenantsOptions },
  coreMigrations: tenantsMigrations,
};

/**
 * What every tenant schema is made of, filled by `createApp` from the module
 * list before anything runs: the tenant migrations of every module, in list
 * order, and every module's lifecycle hook.
 */
export interface TenantSchemaPlan {
  migrations: Migration[];
  hooks: TenantLifecycleHook[];
}

export function createTenantsModule(deps: {
  db: Executor;
  logger: Logger;
  config: TenantsConfig;
  audit: AuditService;
  plan: TenantSchemaPlan;
}): PlexicaModule<TenantsService> {
  const { config } = deps;
  const service = createTenantsService({
    db: deps.db,
    logger: deps.logger,
    tenantMigrations: deps.plan.migrations,
    hooks: deps.plan.hooks,
    retentionDays: config.tenantRetentionDays,
    audit: deps.audit,
  });
  return {
    name: 'tenants',
    service,
    routes: (server) => tenantRoutes(server, { tenants: service }),
    loops: [
      {
        name: 'tenants.purge',
        role: 'scheduler',
        intervalMs: config.purgeIntervalSeconds * 1000,
        runAtStart: true,
        run: () => service.purgeExpired(),
      },
    ],
  };
}
