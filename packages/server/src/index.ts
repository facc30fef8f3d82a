/**
 * `@plexica/server` as a library: build Plexica inside your own program, define
 * job types (and later search types, event subscribers) in code, then start it.
 *
 * @example
 *   import { createApp, loadConfig } from '@plexica/server';
 *   const app = await createApp(loadConfig(process.env));
 *   app.services.jobs.define({ type: 'report.build', async handler(job) { … } });
 *   await app.start();
 */
export { type App, createApp, type Services } from './app/create-app.js';
export { ConfigError, loadConfig, type PlexicaConfig } from './config/index.js';
export type { RequestContext, TenantRef } from './context.js';
export { PlexicaError } from './infra/errors.js';
export type {
  EnqueueInput,
  HttpRequestData,
  HttpRequestResult,
  JobDefinition,
  JobQueueService,
  JobRun,
  JobStatus,
} from './modules/jobs/index.js';
