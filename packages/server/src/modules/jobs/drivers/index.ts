import type { Logger } from 'pino';
import type { Executor } from '../../../infra/database/index.js';
import type { JobsConfig, JobsDriver } from '../config.js';
import type { QueueDriver } from './queue-driver.js';

export type { Delivery, QueueDriver, Received } from './queue-driver.js';

/** What a queue driver may use besides the jobs settings. */
export interface QueueDriverDeps {
  db: Executor;
  logger: Logger;
  redisUrl: string | undefined;
  /** Longest wait for a Redis reply on connections that do not block (PLEXICA_REDIS_COMMAND_TIMEOUT_MS). */
  redisCommandTimeoutMs: number;
  /** The database is the embedded PGlite (one connection, one session). */
  embedded: boolean;
}

interface QueueDriverEntry {
  /** Problems of the settings this driver needs, named by their variables. */
  validate(config: JobsConfig, kernel: { redisUrl: string | undefined }): string[];
  /** Engines are imported when chosen: BullMQ and ioredis cost start-up time a pg-boss install should not pay. */
  create(config: JobsConfig, deps: QueueDriverDeps): Promise<QueueDriver>;
}

/**
 * One driver per `PLEXICA_JOBS_DRIVER` value: a value without a driver does
 * not compile, and a typo in the setting is refused at boot by its enum.
 */
export const QUEUE_DRIVERS: Record<JobsDriver, QueueDriverEntry> = {
  postgres: {
    validate: () => [],
    async create(config, deps) {
      const { createPgBossDriver } = await import('./pg-boss.js');
      return createPgBossDriver({
        db: deps.db,
        embedded: deps.embedded,
        logger: deps.logger,
        leaseSeconds: config.jobsLeaseSeconds,
        retryDelaySeconds: config.jobsRetryDelaySeconds,
        pollingIntervalSeconds: config.jobsPollIntervalSeconds,
      });
    },
  },
  redis: {
    validate: (_config, kernel) =>
      kernel.redisUrl ? [] : ['PLEXICA_REDIS_URL: required when PLEXICA_JOBS_DRIVER is redis'],
    async create(config, deps) {
      const { createBullMqDriver } = await import('./bullmq.js');
      if (!deps.redisUrl) throw new Error('the redis jobs driver needs PLEXICA_REDIS_URL');
      return createBullMqDriver({
        redisUrl: deps.redisUrl,
        prefix: config.jobsRedisPrefix,
        logger: deps.logger,
        leaseSeconds: config.jobsLeaseSeconds,
        retryDelaySeconds: config.jobsRetryDelaySeconds,
        commandTimeoutMs: deps.redisCommandTimeoutMs,
      });
    },
  },
};
