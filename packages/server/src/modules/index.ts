import { auditModule } from './audit/index.js';
import { eventsModule } from './events/index.js';
import { identityModule } from './identity/index.js';
import { jobsModule } from './jobs/index.js';
import { realtimeModule } from './realtime/index.js';
import { searchModule } from './search/index.js';
import { secretsModule } from './secrets/index.js';
import { storageModule } from './storage/index.js';
import { tenantsModule } from './tenants/index.js';
import { webhooksModule } from './webhooks/index.js';

/**
 * Every module, in the order their migrations run, their settings appear in
 * the README table and their permission keys register. A module comes after
 * those whose tables it references. Adding a module: a folder with its front
 * file, one line here, and its `create…Module` call in `app/create-app.ts`.
 */
export const MODULES = [
  tenantsModule,
  secretsModule,
  identityModule,
  auditModule,
  storageModule,
  jobsModule,
  searchModule,
  eventsModule,
  webhooksModule,
  realtimeModule,
] as const;
