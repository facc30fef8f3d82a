import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { JobQueueService } from '../jobs/index.js';
import type { EventBus, Subscription } from './service.js';

export const CANCEL_REQUESTED = 'jobs.job.cancel_requested';

/**
 * Cross-process job cancel: a cancel of a job that runs on another process
 * is published on the bus, and every worker process, in a consumer group of
 * its own (so each receives every cancel), aborts the handler if it runs it.
 */
export function wireJobCancel(bus: EventBus, jobs: JobQueueService) {
  // (job lifecycle events: see `wireJobLifecycle` in catalogue.ts)
  jobs.onCancelElsewhere(async (ctx, job) => {
    await bus.publish(ctx, CANCEL_REQUESTED, { jobId: job.id }, { key: job.id, subject: `job/${job.id}` });
  });
  let subscription: Subscription | undefined;
  return {
    async start(): Promise<void> {
      subscription = await bus.subscribe({
        // one group per process: a group's members share events, and every process must see every cancel
        group: `jobs.cancel.${os.hostname()}.${process.pid}.${randomBytes(4).toString('hex')}`,
        topics: [`*.${CANCEL_REQUESTED}`],
        // a cancel missed while starting concerns a job this process does not run yet
        from: 'latest',
        ephemeral: true,
        maxAttempts: 1,
        handler: async ({ event }) => {
          const { jobId } = event.data as { jobId: string };
          jobs.abortRunning(jobId);
        },
      });
    },
    stop: async () => subscription?.close(),
  };
}
