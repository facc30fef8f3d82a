import type { PermissionDefinition } from '../../permissions.js';

/** Permission keys of the events module. */
export const EVENTS_PERMISSIONS: PermissionDefinition[] = [
  { key: 'events:app:read', scope: 'tenant', member: true, description: "List the tenant's apps" },
  { key: 'events:app:manage', scope: 'tenant', description: 'Register, rename and delete apps' },
  { key: 'events:event:publish', scope: 'tenant', description: 'Publish events as an app of the tenant' },
  {
    key: 'events:event:read',
    scope: 'tenant',
    description: "Read the tenant's event log (every app's events and the core's)",
  },
  {
    key: 'events:dead-letter:read',
    scope: 'tenant',
    description: "List and read the tenant's dead letters (events a consumer group gave up on)",
  },
  {
    key: 'events:dead-letter:redrive',
    scope: 'tenant',
    description: "Deliver the tenant's dead letters to their consumer group again",
  },
  { key: 'events:group:read', scope: 'platform', description: 'List the consumer groups and their lag' },
  {
    key: 'events:group:replay',
    scope: 'platform',
    description: 'Move a consumer group back or forward (for every tenant it serves)',
  },
];
