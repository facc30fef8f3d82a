import type { PermissionDefinition } from '../../permissions.js';

/** Permission keys of the search module (a type may also name its own read permission). */
export const SEARCH_PERMISSIONS: PermissionDefinition[] = [
  {
    key: 'search:document:read',
    scope: 'tenant',
    member: true,
    description: 'Search the tenant’s documents (each type’s own permission is checked too)',
  },
  { key: 'search:document:write', scope: 'tenant', description: 'Index and delete documents' },
  {
    key: 'search:type:manage',
    scope: 'tenant',
    description: 'Register search types and choose the tenant’s text search language',
  },
  { key: 'search:index:reindex', scope: 'tenant', description: 'Rebuild the index of a type' },
];
