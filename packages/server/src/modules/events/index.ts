import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import type { TenantRef } from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import type { RateLimitStore } from '../../infra/rate-limit/store.js';
import { createTenantLimit } from '../../infra/rate-limit/tenant-limit.js';
import type { ModuleDefinition, PlexicaModule } from '../../module.js';
import type { AuditService } from '../audit/index.js';
import type { ApiKeysService } from '../identity/index.js';
import type { JobQueueService } from '../jobs/index.js';
import { createAppKeys } from './app-keys.js';
import { type AppsService, createAppsService } from './apps.js';
import { busRoutes } from './bus-routes.js';
import { lifecycleEventsFromAudit, wireJobLifecycle } from './catalogue.js';
import { type EventsConfig, eventsOptions } from './config.js';
import { EVENT_DRIVERS } from './drivers/index.js';
import { wireJobCancel } from './job-cancel.js';
import { eventsMigrations } from './migrations.js';
import { EVENTS_PERMISSIONS } from './permissions.js';
import { createPlatformEventsService, type PlatformEventsService } from './platform-events.js';
import { eventRoutes } from './routes.js';
import { createEventBus, type EventBus } from './service.js';

export type { App, AppsService } from './apps.js';
export { CORE_EVENT_CATALOGUE } from './catalogue.js';
export type { EventsConfig } from './config.js';
export type { ConsumerGroup, ConsumerGroupStore } from './consumer-groups.js';
export type { DeadLetter, DeadLetterQuery, DeadLetterScope, DeadLetterStore } from './dead-letters.js';
export type { ConsumerSpec, DriverDelivery, EventDriver, SeekPoint } from './drivers/index.js';
export type { CloudEvent } from './envelope.js';
export type { EventLogFilter, PlatformEvent, PlatformEventsService } from './platform-events.js';
export type { EventBus, EventDelivery, PublishOptions, SubscribeOptions, Subscription } from './service.js';

/** seed 002: an event's data is at most 64 KB. */
export const MAX_EVENT_DATA_BYTES = 64 * 1024;

/** The durable event bus: CloudEvents on the database's event log or on Redis Streams. */
export const eventsModule: ModuleDefinition<EventsConfig> = {
  name: 'events',
  config: {
    options: eventsOptions,
    validate: (config, kernel) => EVENT_DRIVERS[config.eventsDriver].validate(config, kernel),
  },
  permissions: EVENTS_PERMISSIONS,
  coreMigrations: eventsMigrations,
};

export async function createEventsModule(deps: {
  db: Executor;
  logger: Logger;
  config: EventsConfig;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  audit: AuditService;
  jobs: JobQueueService;
  apiKeys: ApiKeysService;
  rateLimits: RateLimitStore;
  metrics: { registry: Registry; onPublished(type: string): void };
}): Promise<PlexicaModule<EventBus> & { apps: AppsService; log: PlatformEventsService }> {
  const { config } = deps;
  const driver = await EVENT_DRIVERS[config.eventsDriver].create(config, deps);
  const bus = createEventBus({
    db: deps.db,
    driver,
    logger: deps.logger,
    maxDataBytes: MAX_EVENT_DATA_BYTES,
    maxAttempts: config.eventsMaxAttempts,
    ackTimeoutMs: config.eventsAckTimeoutSeconds * 1000,
    retention: {
      maxAgeMs: config.eventsRetentionHours * 3_600_000,
      maxEvents: config.eventsRetentionMaxEvents,
    },
    onPublished: (event) => deps.metrics.onPublished(event.type),
  });
  const apps = createAppsService(deps.db);
  const appKeys = createAppKeys({ db: deps.db, apps, apiKeys: deps.apiKeys });
  const log = createPlatformEventsService({
    db: deps.db,
    bus,
    apps,
    mayPublishAs: (ctx, appId) => appKeys.assertMayPublishAs(ctx, appId),
    publishLimit: createTenantLimit(deps.rateLimits, {
      name: 'events',
      max: config.eventsPublishRateLimit,
      windowMs: 15 * 60_000,
      // a super admin's override in the tenant's settings (PATCH /api/v1/tenants/{id})
      maxOf: (tenant: TenantRef) => tenant.settings.rateLimitEventsPublish,
    }),
  });
  deps.audit.onRecorded(lifecycleEventsFromAudit(log, bus));
  const jobCancel = wireJobCancel(bus, deps.jobs);
  wireJobLifecycle(deps.jobs, log, deps.db, deps.logger);
  new Gauge({
    name: 'event_consumer_lag',
    help: 'Events a consumer group subscribed in this process has still to work through',
    labelNames: ['group'] as const,
    registers: [deps.metrics.registry],
    async collect() {
      this.reset();
      for (const group of bus.groups()) this.set({ group }, await bus.lag(group));
    },
  });
  return {
    name: 'events',
    service: bus,
    apps,
    log,
    async routes(server) {
      await eventRoutes(server, { apps, events: log, appKeys });
      await busRoutes(server, { bus, audit: deps.audit });
    },
    health: { events: () => bus.ping() },
    loops: [
      // events a crash left in the outbox between the commit and the hand-over to the engine
      { name: 'events.outbox-relay', role: 'scheduler', intervalMs: 5000, run: () => bus.relayOutbox() },
      {
        name: 'events.retention',
        role: 'scheduler',
        intervalMs: 3_600_000,
        runAtStart: true,
        run: () => bus.trim(),
      },
    ],
    async start(roles) {
      if (roles.has('worker')) await jobCancel.start();
    },
    async close() {
      await jobCancel.stop();
      await bus.close();
    },
  };
}
