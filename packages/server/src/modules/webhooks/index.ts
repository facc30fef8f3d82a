import type { Logger } from 'pino';
import { systemContext, type TenantRef, toTenantRef } from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import { createOutboundGuard, type HostResolver } from '../../infra/net/outbound-guard.js';
import type { RateLimitStore } from '../../infra/rate-limit/store.js';
import { createTenantLimit } from '../../infra/rate-limit/tenant-limit.js';
import type { ModuleDefinition, PlexicaModule } from '../../module.js';
import type { AuditService } from '../audit/index.js';
import type { AppsService, EventBus, Subscription } from '../events/index.js';
import type { JobQueueService } from '../jobs/index.js';
import type { SecretsService } from '../secrets/index.js';
import { RATE_LIMIT_WINDOW_MS, scheduleProblems, type WebhooksConfig, webhooksOptions } from './config.js';
import { createWebhookDelivery, DELIVER_JOB } from './delivery.js';
import { createDeliveryLog, type WebhookDeliveryLog } from './delivery-log.js';
import { createWebhookEndpointsService, type WebhookEndpointsService } from './endpoints.js';
import { webhooksMigrations } from './migrations.js';
import { WEBHOOKS_PERMISSIONS } from './permissions.js';
import { webhookRoutes } from './routes.js';

export type { WebhooksConfig } from './config.js';
export type { WebhookAttempt, WebhookDelivery, WebhookDeliveryLog } from './delivery-log.js';
export type { WebhookEndpoint, WebhookEndpointsService } from './endpoints.js';

/**
 * Deliveries one worker process attempts at once. An attempt mostly waits on
 * batched statements (claim, load, record, settle) and the POST, so the more
 * at once, the larger each batch and the more deliveries per second
 * (bench/webhooks.ts: 50 → 100 gained two thirds on PGlite).
 */
export const WEBHOOK_WORKER_CONCURRENCY = 100;
/**
 * Of those, to one endpoint: a tenth, so one that answers in 10 s leaves the
 * other 90 to everyone else (bench/webhooks.ts). An endpoint answering within
 * 200 ms still takes the default 50 attempts per second
 * (PLEXICA_WEBHOOKS_ENDPOINT_RATE_LIMIT).
 */
const ENDPOINT_CONCURRENCY = 10;

/** Standard Webhooks 1.0 delivery of the tenant's events, through the jobs module. */
export const webhooksModule: ModuleDefinition<WebhooksConfig> = {
  name: 'webhooks',
  config: { options: webhooksOptions, validate: scheduleProblems },
  permissions: WEBHOOKS_PERMISSIONS,
  coreMigrations: webhooksMigrations,
};

export function createWebhooksModule(deps: {
  db: Executor;
  logger: Logger;
  config: WebhooksConfig;
  bus: EventBus;
  jobs: JobQueueService;
  secrets: SecretsService;
  audit: AuditService;
  apps: AppsService;
  /** The operator's allow-list (PLEXICA_OUTBOUND_ALLOW_HOSTS): the only way to reach http or private hosts. */
  outboundAllowHosts: string[];
  rateLimits: RateLimitStore;
  /** Tests resolve host names their own way (a name that moves to 127.0.0.1 after creation). */
  resolveHost?: HostResolver;
}): PlexicaModule<WebhookEndpointsService> & { deliveries: WebhookDeliveryLog } {
  const { config } = deps;
  const timeoutMs = config.webhooksTimeoutSeconds * 1000;
  // the security work's guard, with the webhook timeout and no redirects followed
  const guard = createOutboundGuard({
    allowHosts: deps.outboundAllowHosts,
    timeoutMs,
    maxRedirects: 0,
    maxResponseBytes: 64 * 1024,
    ...(deps.resolveHost && { resolve: deps.resolveHost }),
  });
  const endpoints = createWebhookEndpointsService({ ...deps, guard });
  const deliveries = createWebhookDelivery({
    ...deps,
    guard,
    retrySchedule: config.webhooksRetrySchedule.map(Number),
    timeoutMs,
    autoDisableAfter: config.webhooksAutoDisableAfter,
    endpointRateLimit: config.webhooksEndpointRateLimit,
    endpointConcurrency: ENDPOINT_CONCURRENCY,
  });
  const log = createDeliveryLog(deps.db, deps.jobs);
  deps.jobs.define<{ deliveryId: string }>({
    type: DELIVER_JOB,
    // our own retries (schedule, Retry-After): each attempt is a job of its own
    maxAttempts: 1,
    timeoutMs: timeoutMs + 10_000,
    concurrency: WEBHOOK_WORKER_CONCURRENCY,
    tenantConcurrency: WEBHOOK_WORKER_CONCURRENCY,
    handler: (run) => deliveries.attempt(run.ctx, run.data.deliveryId),
  });
  let dispatcher: Subscription | undefined;
  return {
    name: 'webhooks',
    service: endpoints,
    deliveries: log,
    routes: (server) =>
      webhookRoutes(server, {
        endpoints,
        deliveries: log,
        manageLimit: createTenantLimit(deps.rateLimits, {
          name: 'webhook management calls',
          max: config.webhooksManageRateLimit,
          windowMs: RATE_LIMIT_WINDOW_MS,
          // a super admin's override in the tenant's settings (PATCH /api/v1/tenants/{id})
          maxOf: (tenant: TenantRef) => tenant.settings.rateLimitWebhooksManage,
        }),
      }),
    loops: [
      {
        name: 'webhooks.log-purge',
        role: 'scheduler',
        intervalMs: 3_600_000,
        runAtStart: true,
        run: () => log.purge(config.webhooksLogRetentionDays),
      },
    ],
    async start(roles) {
      if (!roles.has('worker')) return;
      dispatcher = await deps.bus.subscribe({
        group: 'webhooks.dispatch',
        topics: ['*.*'],
        handler: async ({ event }) => {
          if (!event.tenantid) return;
          const tenant = await deps.db
            .selectFrom('core.tenants')
            .select(['id', 'slug', 'settings'])
            .where('id', '=', event.tenantid)
            .executeTakeFirst();
          if (!tenant) return;
          await deliveries.dispatch(
            systemContext(event.traceparent.split('-')[1] ?? event.id, toTenantRef(tenant)),
            event,
          );
        },
      });
    },
    close: async () => {
      await dispatcher?.close();
    },
  };
}
