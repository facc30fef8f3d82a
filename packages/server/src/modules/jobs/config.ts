import type { ConfigFragment } from '../../infra/options.js';

export const JOBS_DRIVERS = ['postgres', 'redis'] as const;
export type JobsDriver = (typeof JOBS_DRIVERS)[number];

/** The jobs module's settings: the engine and its leases. */
export interface JobsConfig {
  jobsDriver: (typeof JOBS_DRIVERS)[number];
  jobsRedisPrefix: string;
  jobsLeaseSeconds: number;
  jobsPollIntervalSeconds: number;
  jobsRetryDelaySeconds: number;
}

/** Every setting of this fragment, its environment variable, type and default. */
export const jobsOptions: ConfigFragment<JobsConfig>['options'] = {
  jobsDriver: {
    env: 'PLEXICA_JOBS_DRIVER',
    kind: { type: 'enum', values: JOBS_DRIVERS },
    default: 'postgres',
    description:
      'Job engine: pg-boss in the database (embedded or PostgreSQL), or BullMQ on PLEXICA_REDIS_URL',
  },
  jobsRedisPrefix: {
    env: 'PLEXICA_JOBS_REDIS_PREFIX',
    kind: { type: 'string' },
    default: 'plexica',
    description: 'Key prefix of the BullMQ queues in Redis',
  },
  jobsLeaseSeconds: {
    env: 'PLEXICA_JOBS_LEASE_SECONDS',
    // pg-boss heartbeats no faster than every 5 s (half of a 10 s lease)
    kind: { type: 'int', min: 10, max: 3600 },
    default: 30,
    description: 'A worker that stops heartbeating for this long (crashed) loses its job to another worker',
  },
  jobsPollIntervalSeconds: {
    env: 'PLEXICA_JOBS_POLL_INTERVAL',
    kind: { type: 'int', min: 1, max: 60 },
    default: 2,
    description: 'How often idle workers look for jobs enqueued by other processes',
  },
  jobsRetryDelaySeconds: {
    env: 'PLEXICA_JOBS_RETRY_DELAY',
    kind: { type: 'int', min: 1, max: 3600 },
    default: 2,
    description: 'First retry delay of a failed job; doubles per attempt, with jitter, up to an hour',
  },
};
