import type { ConfigFragment } from '../../infra/options.js';

/** The tenants module's settings: retention of deleted tenants. */
export interface TenantsConfig {
  tenantRetentionDays: number;
  purgeIntervalSeconds: number;
}

/** Every setting of this fragment, its environment variable, type and default. */
export const tenantsOptions: ConfigFragment<TenantsConfig>['options'] = {
  tenantRetentionDays: {
    env: 'PLEXICA_TENANT_RETENTION_DAYS',
    kind: { type: 'int', min: 0, max: 3650 },
    default: 30,
    description: 'Days a deleted tenant is kept before its schema and data are purged',
  },
  purgeIntervalSeconds: {
    env: 'PLEXICA_PURGE_INTERVAL',
    kind: { type: 'int', min: 1, max: 86_400 },
    default: 3600,
    description: 'How often the scheduler purges tenants past their retention window',
  },
};
