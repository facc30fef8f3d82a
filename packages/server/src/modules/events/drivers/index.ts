import type { Logger } from 'pino';
import type { Executor } from '../../../infra/database/index.js';
import type { EventsConfig, EventsDriver } from '../config.js';
import type { EventDriver } from './event-driver.js';

export type { ConsumerSpec, Consumption, DriverDelivery, EventDriver, SeekPoint } from './event-driver.js';

/** What an event driver may use besides the events settings. */
export interface EventDriverDeps {
  db: Executor;
  logger: Logger;
  /** PostgreSQL's URL (a LISTEN connection of the driver's own); unset on the embedded database. */
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
}

interface EventDriverEntry {
  /** Problems of the settings this driver needs, named by their variables. */
  validate(config: EventsConfig, kernel: { redisUrl: string | undefined }): string[];
  /** Engines are imported when chosen. */
  create(config: EventsConfig, deps: EventDriverDeps): Promise<EventDriver>;
}

/** One driver per `PLEXICA_EVENTS_DRIVER` value: a value without a driver does not compile. */
export const EVENT_DRIVERS: Record<EventsDriver, EventDriverEntry> = {
  postgres: {
    validate: () => [],
    async create(config, deps) {
      const { createPostgresEventDriver } = await import('./postgres.js');
      return createPostgresEventDriver({
        db: deps.db,
        logger: deps.logger,
        listenUrl: deps.databaseUrl,
        pollIntervalMs: config.eventsPollIntervalMs,
      });
    },
  },
  redis: {
    validate: (_config, kernel) =>
      kernel.redisUrl ? [] : ['PLEXICA_REDIS_URL: required when PLEXICA_EVENTS_DRIVER is redis'],
    async create(config, deps) {
      const { createRedisEventDriver } = await import('./redis.js');
      if (!deps.redisUrl) throw new Error('the redis event driver needs PLEXICA_REDIS_URL');
      return createRedisEventDriver({
        redisUrl: deps.redisUrl,
        prefix: config.eventsRedisPrefix,
        logger: deps.logger,
        pollIntervalMs: config.eventsPollIntervalMs,
        maxEvents: config.eventsRetentionMaxEvents,
      });
    },
  },
  nats: {
    validate: (config) => [
      ...(config.natsUrl ? [] : ['PLEXICA_NATS_URL: required when PLEXICA_EVENTS_DRIVER is nats']),
      // a stream name that is also a subject token
      ...(/^[A-Za-z0-9_-]{1,64}$/.test(config.eventsNatsStream)
        ? []
        : ['PLEXICA_EVENTS_NATS_STREAM: at most 64 letters, digits, _ or -']),
    ],
    async create(config, deps) {
      const { createNatsEventDriver } = await import('./nats.js');
      if (!config.natsUrl) throw new Error('the nats event driver needs PLEXICA_NATS_URL');
      return createNatsEventDriver({
        natsUrl: config.natsUrl,
        stream: config.eventsNatsStream,
        partitions: config.eventsNatsPartitions,
        logger: deps.logger,
        pollIntervalMs: config.eventsPollIntervalMs,
        retention: {
          maxAgeMs: config.eventsRetentionHours * 3_600_000,
          maxEvents: config.eventsRetentionMaxEvents,
        },
      });
    },
  },
};
