import type { Executor } from '../../infra/database/index.js';
import type { ModuleDefinition, PlexicaModule } from '../../module.js';
import { auditTenantMigrations } from './migrations.js';
import { auditDenials, auditRoutes } from './routes.js';
import { type AuditService, createAuditService } from './service.js';

export type { AuditCredential, AuditEvent, AuditInput, AuditListener, AuditService } from './service.js';

/** The audit log: one table per tenant schema, written in the transaction of the change it records. */
export const auditModule: ModuleDefinition = {
  name: 'audit',
  tenantMigrations: auditTenantMigrations,
};

export function createAuditModule(deps: { db: Executor }): PlexicaModule<AuditService> {
  const service = createAuditService(deps.db);
  return {
    name: 'audit',
    service,
    async routes(server) {
      // one hook for the whole server: a refusal anywhere is recorded in the tenant's log
      auditDenials(server, service);
      await auditRoutes(server, { audit: service });
    },
  };
}
