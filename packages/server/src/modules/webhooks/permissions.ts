import type { PermissionDefinition } from '../../permissions.js';

/** Permission keys of the webhooks module. */
export const WEBHOOKS_PERMISSIONS: PermissionDefinition[] = [
  {
    key: 'webhooks:endpoint:read',
    scope: 'tenant',
    description: "List the tenant's webhook endpoints and their deliveries",
  },
  {
    key: 'webhooks:endpoint:manage',
    scope: 'tenant',
    description: 'Create, change, delete webhook endpoints, rotate their secrets, redeliver and recover',
  },
];
