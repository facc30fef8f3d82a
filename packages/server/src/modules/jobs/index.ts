import type { OutboundGuard } from '../../infra/net/outbound-guard.js';
import type { ModuleDefinition, PlexicaModule } from '../../module.js';
import type { AuditService } from '../audit/index.js';
import { type JobsConfig, jobsOptions } from './config.js';
import { QUEUE_DRIVERS, type QueueDriverDeps } from './drivers/index.js';
import { httpRequestJob } from './http-request.js';
import { jobsMigrations } from './migrations.js';
import { JOBS_PERMISSIONS } from './permissions.js';
import { jobRoutes } from './routes.js';
import { createJobSchedulesService, type JobSchedulesService } from './schedules.js';
import { createJobQueueService, type JobQueueService } from './service.js';

export type { JobsConfig } from './config.js';
export type { HttpRequestData, HttpRequestResult } from './http-request.js';
export type { JobFinished } from './runner.js';
export type { JobSchedulesService } from './schedules.js';
export type { EnqueueInput, JobDefinition, JobQueueService, JobRun, JobStatus } from './service.js';

/** Durable jobs and cron schedules, on pg-boss (the database) or BullMQ (Redis). */
export const jobsModule: ModuleDefinition<JobsConfig> = {
  name: 'jobs',
  config: {
    options: jobsOptions,
    validate: (config, kernel) => QUEUE_DRIVERS[config.jobsDriver].validate(config, kernel),
  },
  permissions: JOBS_PERMISSIONS,
  coreMigrations: jobsMigrations,
};

export async function createJobsModule(
  deps: QueueDriverDeps & {
    config: JobsConfig;
    audit: AuditService;
    /** What the built-in `http.request` type calls through. */
    outbound: OutboundGuard;
    /** How long `close` waits for running handlers before giving their deliveries back. */
    shutdownTimeoutMs: number;
  },
): Promise<PlexicaModule<JobQueueService> & { schedules: JobSchedulesService }> {
  const { db, logger, config, audit } = deps;
  const driver = await QUEUE_DRIVERS[config.jobsDriver].create(config, deps);
  const jobs = createJobQueueService({ db, driver, logger, audit });
  // built in, so the API is useful without code: delayed and scheduled HTTP calls with retries
  jobs.define(httpRequestJob(deps.outbound));
  const schedules = createJobSchedulesService({ db, jobs, logger, audit });
  return {
    name: 'jobs',
    service: jobs,
    schedules,
    routes: (server) => jobRoutes(server, { jobs, schedules }),
    loops: [
      // each due schedule is enqueued by exactly one scheduler (SKIP LOCKED)
      { name: 'jobs.cron', role: 'scheduler', intervalMs: 1000, run: () => schedules.tick() },
      // deliveries a crash interrupted, and jobs waiting for room in their window
      { name: 'jobs.sweep', role: 'scheduler', intervalMs: 30_000, run: () => jobs.sweep() },
      // cron ticks enqueue in a transaction, which cannot look a type up: learn new ones here
      { name: 'jobs.types', role: 'scheduler', intervalMs: 10_000, run: () => jobs.syncTypes() },
    ],
    async start(roles) {
      // split roles agree on types: each declares what it defines and learns what others declared
      await jobs
        .syncTypes()
        .catch((err: unknown) => logger.warn({ err }, 'could not share job types at start; retried later'));
      // every role enqueues (the api role through routes, the scheduler through cron), so every
      // role prepares the queues now: `enqueueIn` inside a transaction cannot prepare them itself
      await jobs
        .prepare(jobs.types())
        .catch((err: unknown) => logger.warn({ err }, 'job engine not ready at start; retried on first use'));
      if (roles.has('worker')) await jobs.start();
    },
    async drain(timeoutMs) {
      const cut = await jobs.stopWorkers(timeoutMs);
      return cut > 0
        ? [`${cut} running job${cut === 1 ? '' : 's'} given back (they run again on another worker)`]
        : [];
    },
    close: () => jobs.stop(deps.shutdownTimeoutMs),
  };
}
