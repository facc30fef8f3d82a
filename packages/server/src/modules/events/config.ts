import type { ConfigFragment } from '../../infra/options.js';

export const EVENTS_DRIVERS = ['postgres', 'redis', 'nats'] as const;
export type EventsDriver = (typeof EVENTS_DRIVERS)[number];

/** The event bus's settings: its engine, delivery and retention. */
export interface EventsConfig {
  eventsDriver: EventsDriver;
  eventsRedisPrefix: string;
  natsUrl: string | undefined;
  eventsNatsStream: string;
  eventsNatsPartitions: number;
  eventsPollIntervalMs: number;
  eventsMaxAttempts: number;
  eventsAckTimeoutSeconds: number;
  eventsRetentionHours: number;
  eventsRetentionMaxEvents: number;
  eventsLogRetentionDays: number;
  eventsPublishRateLimit: number;
}

/** Every setting of this fragment, its environment variable, type and default. */
export const eventsOptions: ConfigFragment<EventsConfig>['options'] = {
  eventsDriver: {
    env: 'PLEXICA_EVENTS_DRIVER',
    kind: { type: 'enum', values: EVENTS_DRIVERS },
    default: 'postgres',
    description:
      'Event bus engine: the event log in the database (embedded or PostgreSQL), Redis Streams on PLEXICA_REDIS_URL, or NATS JetStream on PLEXICA_NATS_URL',
  },
  eventsRedisPrefix: {
    env: 'PLEXICA_EVENTS_REDIS_PREFIX',
    kind: { type: 'string' },
    default: 'plexica',
    description: 'Key prefix of the event stream and consumer-group state in Redis',
  },
  natsUrl: {
    env: 'PLEXICA_NATS_URL',
    kind: { type: 'url', protocols: ['nats:', 'tls:'] },
    description: 'NATS server with JetStream (nats://host:4222), needed when PLEXICA_EVENTS_DRIVER is nats',
  },
  eventsNatsStream: {
    env: 'PLEXICA_EVENTS_NATS_STREAM',
    kind: { type: 'string' },
    default: 'plexica_events',
    description: 'JetStream stream of the event bus (also the first token of its subjects)',
  },
  eventsNatsPartitions: {
    env: 'PLEXICA_EVENTS_NATS_PARTITIONS',
    kind: { type: 'int', min: 1, max: 256 },
    default: 16,
    description:
      'Key partitions of a new NATS event stream: events of one key keep their order, keys of one partition wait for each other',
  },
  eventsPollIntervalMs: {
    env: 'PLEXICA_EVENTS_POLL_INTERVAL_MS',
    kind: { type: 'int', min: 10, max: 60_000 },
    default: 1000,
    description:
      'How often idle consumers look for events nothing woke them for (LISTEN/NOTIFY wakes them at once)',
  },
  eventsMaxAttempts: {
    env: 'PLEXICA_EVENTS_MAX_ATTEMPTS',
    kind: { type: 'int', min: 1, max: 100 },
    default: 5,
    description: 'Deliveries of an event to a consumer group before it becomes a dead letter',
  },
  eventsAckTimeoutSeconds: {
    env: 'PLEXICA_EVENTS_ACK_TIMEOUT_SECONDS',
    kind: { type: 'int', min: 1, max: 3600 },
    default: 30,
    description: 'An event not acked for this long (its consumer died or hangs) goes to another member',
  },
  eventsRetentionHours: {
    env: 'PLEXICA_EVENTS_RETENTION_HOURS',
    kind: { type: 'int', min: 1, max: 87_600 },
    default: 168,
    description: 'How long the bus keeps events for replay and for consumers that are down',
  },
  eventsRetentionMaxEvents: {
    env: 'PLEXICA_EVENTS_RETENTION_MAX_EVENTS',
    kind: { type: 'int', min: 1000, max: 1_000_000_000 },
    default: 10_000_000,
    description: 'Most events the bus keeps; the oldest go first',
  },
  eventsLogRetentionDays: {
    env: 'PLEXICA_EVENTS_LOG_RETENTION_DAYS',
    kind: { type: 'int', min: 1, max: 3650 },
    default: 90,
    description: 'How long the platform event log (GET /api/v1/events) keeps an event (seed 002: 90 days)',
  },
  eventsPublishRateLimit: {
    env: 'PLEXICA_EVENTS_PUBLISH_RATE_LIMIT',
    kind: { type: 'int', min: 1, max: 100_000_000 },
    default: 1000,
    description: 'Events a tenant may publish through the API per 15 minutes (seed 002)',
  },
};
