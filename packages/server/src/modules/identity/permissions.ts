import type { PermissionDefinition } from '../../permissions.js';

/** Permission keys owned by the kernel (`core:*`). */
export const CORE_PERMISSIONS: PermissionDefinition[] = [
  { key: 'core:tenant:create', scope: 'platform', description: 'Create tenants' },
  { key: 'core:tenant:read', scope: 'platform', description: 'List and read tenants' },
  {
    key: 'core:tenant:update',
    scope: 'platform',
    description: 'Rename, suspend, resume tenants and change their limits',
  },
  { key: 'core:tenant:delete', scope: 'platform', description: 'Delete tenants' },
  { key: 'core:permission:read', scope: 'tenant', member: true, description: 'List permission keys' },
  { key: 'core:user:read', scope: 'tenant', member: true, description: "List and read the tenant's users" },
  { key: 'core:user:create', scope: 'tenant', description: 'Create users' },
  { key: 'core:user:update', scope: 'tenant', description: "Change users' names, roles, status, passwords" },
  { key: 'core:user:delete', scope: 'tenant', description: 'Delete users' },
  { key: 'core:session:manage', scope: 'tenant', description: "List and revoke other users' sessions" },
  { key: 'core:role:read', scope: 'tenant', member: true, description: 'List roles' },
  { key: 'core:role:manage', scope: 'tenant', description: 'Create, change and delete custom roles' },
  {
    key: 'core:api-key:read',
    scope: 'tenant',
    member: true,
    description: 'List API keys (members: their own)',
  },
  { key: 'core:api-key:create', scope: 'tenant', member: true, description: 'Create API keys' },
  {
    key: 'core:api-key:revoke',
    scope: 'tenant',
    member: true,
    description: 'Revoke API keys (members: their own)',
  },
  { key: 'core:api-key:manage', scope: 'tenant', description: "Read and revoke everyone's API keys" },
  {
    key: 'core:identity-provider:manage',
    scope: 'tenant',
    description: "Configure the tenant's OIDC provider",
  },
  {
    key: 'core:identity-link:manage',
    scope: 'tenant',
    description: "Link and unlink other users' accounts to identity provider subjects",
  },
  { key: 'core:audit:read', scope: 'tenant', description: "Read the tenant's audit log" },
];
