import type { PermissionDefinition } from '../../permissions.js';

/** Permission keys of the jobs module. */
export const JOBS_PERMISSIONS: PermissionDefinition[] = [
  {
    key: 'jobs:job:read',
    scope: 'tenant',
    member: true,
    description: "List the tenant's jobs and read their status",
  },
  { key: 'jobs:job:create', scope: 'tenant', description: 'Enqueue jobs' },
  { key: 'jobs:job:cancel', scope: 'tenant', description: 'Cancel pending and running jobs' },
  {
    key: 'jobs:schedule:manage',
    scope: 'tenant',
    description: 'Create, pause, resume and delete cron schedules',
  },
  { key: 'jobs:job:retry', scope: 'tenant', description: 'Re-drive failed (dead) and cancelled jobs' },
];
