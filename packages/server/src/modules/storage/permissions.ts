import type { PermissionDefinition } from '../../permissions.js';

/** Permission keys of the storage module. */
export const STORAGE_PERMISSIONS: PermissionDefinition[] = [
  {
    key: 'storage:file:read',
    scope: 'tenant',
    member: true,
    description: "Download, list and sign download URLs for the tenant's files",
  },
  {
    key: 'storage:file:write',
    scope: 'tenant',
    member: true,
    description: 'Upload, copy and move files and sign upload URLs',
  },
  { key: 'storage:file:delete', scope: 'tenant', description: 'Delete files' },
];
