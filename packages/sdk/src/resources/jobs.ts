import { type Body, byId, type Query } from '../operations.js';
import type { components } from '../schema.js';
import { type Transport, unwrap } from '../transport.js';

export type Job = components['schemas']['Job'];

/** Background jobs and cron schedules of the caller's tenant. */
export function createJobsResource({ api }: Transport) {
  return {
    /** `idempotencyKey` in the body returns the first job for a repeated key. */
    enqueue: (body: Body<'/api/v1/jobs', 'post'>) => unwrap(api.POST('/api/v1/jobs', { body })),
    enqueueBulk: (jobs: Body<'/api/v1/jobs', 'post'>[]) =>
      unwrap(api.POST('/api/v1/jobs/bulk', { body: { jobs } })),
    list: (query: Query<'/api/v1/jobs', 'get'> = {}) =>
      unwrap(api.GET('/api/v1/jobs', { params: { query } })),
    get: (jobId: string) => unwrap(api.GET('/api/v1/jobs/{id}', byId(jobId))),
    cancel: (jobId: string) => unwrap(api.DELETE('/api/v1/jobs/{id}', byId(jobId))),
    retry: (jobId: string) => unwrap(api.POST('/api/v1/jobs/{id}/retry', byId(jobId))),
    types: () => unwrap(api.GET('/api/v1/jobs/types')),
    /** A job at every tick of `cron` (5 or 6 fields, @daily…), in `timezone` when given. */
    schedule: (body: Body<'/api/v1/jobs/schedule', 'post'>) =>
      unwrap(api.POST('/api/v1/jobs/schedule', { body })),
    schedules: () => unwrap(api.GET('/api/v1/job-schedules')),
    pauseSchedule: (scheduleId: string, paused = true) =>
      unwrap(api.PATCH('/api/v1/job-schedules/{id}', { ...byId(scheduleId), body: { paused } })),
    removeSchedule: (scheduleId: string) =>
      unwrap(api.DELETE('/api/v1/job-schedules/{id}', byId(scheduleId))),
  };
}
