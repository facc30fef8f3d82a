import type { Logger } from 'pino';
import { type PlexicaConfig, sliceOf } from '../config/index.js';
import { openDatabase } from '../infra/database/index.js';
import { createIdempotencyStore } from '../infra/idempotency.js';
import { createMetrics } from '../infra/metrics.js';
import { createOutboundGuard, type HostResolver } from '../infra/net/outbound-guard.js';
import { createFailOpenRateLimitStore } from '../infra/rate-limit/fail-open.js';
import {
  createMemoryRateLimitStore,
  createRedisRateLimitStore,
  type RateLimitStore,
} from '../infra/rate-limit/store.js';
import { openSignalChannel } from '../infra/signals/index.js';
import { type HealthCheck, type PlexicaModule, PROCESS_ROLES, type ProcessRole } from '../module.js';
import { createAuditModule } from '../modules/audit/index.js';
import { createEventsModule, eventsModule } from '../modules/events/index.js';
import {
  announceBootstrap,
  type Bootstrap,
  bootstrapSuperAdmin,
  createIdentityModule,
  identityModule,
  undoBootstrap,
} from '../modules/identity/index.js';
import { MODULES } from '../modules/index.js';
import { createJobsModule, jobsModule } from '../modules/jobs/index.js';
import { createRealtimeModule, realtimeModule } from '../modules/realtime/index.js';
import { createSearchModule, searchModule } from '../modules/search/index.js';
import { createSecretsModule, secretsModule } from '../modules/secrets/index.js';
import { createStorageModule, storageModule } from '../modules/storage/index.js';
import { createTenantsModule, type TenantSchemaPlan, tenantsModule } from '../modules/tenants/index.js';
import { createWebhooksModule, webhooksModule } from '../modules/webhooks/index.js';
import { PermissionRegistry } from '../permissions.js';
import { diskCheck, healthRoutes } from './health.js';
import { createLogger } from './logger.js';
import { createLoops } from './loops.js';
import { migrateCore, TENANT_MIGRATIONS } from './migrations.js';
import { connectRedis } from './redis.js';
import { createServer } from './server.js';
import { countInFlight, type ShutdownReport, shutDown } from './shutdown.js';
import type { App } from './types.js';

export { createLogger } from './logger.js';
export { CORE_MIGRATIONS, migrateCore, TENANT_MIGRATIONS } from './migrations.js';
export type { App, Services } from './types.js';

const rolesOf = (config: PlexicaConfig): ReadonlySet<ProcessRole> =>
  new Set(config.role === 'all' ? PROCESS_ROLES : [config.role]);

/**
 * Wires the whole program by hand from `config`: nothing is created at import
 * time, so tests build as many isolated apps as they like. Each module is
 * created with typed deps (its own settings slice, the services it uses), then
 * the module list is walked for routes, health checks, loops, lifecycle hooks,
 * start and close.
 */
export interface CreateAppOptions {
  logger?: Logger;
  /** How outbound requests resolve host names (tests make a name resolve elsewhere later: DNS rebinding). */
  resolveHost?: HostResolver;
}

export async function createApp(config: PlexicaConfig, options: CreateAppOptions = {}): Promise<App> {
  const logger = options.logger ?? createLogger(config);
  const closers: (() => Promise<void>)[] = [];
  const gauges = { activeTenants: async () => 0 };
  const metrics = createMetrics({
    activeTenants: () => gauges.activeTenants(),
    // seed 003 names the gauge; nothing is a plugin until the plugin module exists
    activePlugins: async () => 0,
  });
  const database = await openDatabase(config, { logger, onQuery: (event) => metrics.onQuery(event) });
  closers.push(() => database.close());
  try {
    const { db } = database;
    // migrations are static (the module list's), so `core` is migrated before any module reads it
    if (config.migrateOnStart) {
      const applied = await migrateCore(db);
      if (applied.length > 0) logger.info({ applied }, 'applied core migrations');
    }
    const registry = new PermissionRegistry();
    for (const definition of MODULES) {
      if (definition.permissions) registry.register(definition.name, definition.permissions);
    }
    const redis = config.redisUrl
      ? await connectRedis(config.redisUrl, config.redisCommandTimeoutMs, logger)
      : undefined;
    // QUIT needs a Redis that answers: one that is down is just disconnected
    if (redis)
      closers.push(() =>
        redis.quit().then(
          () => undefined,
          () => redis.disconnect(),
        ),
      );
    const rateLimits: RateLimitStore = redis
      ? createFailOpenRateLimitStore(createRedisRateLimitStore(redis), { logger, registry: metrics.registry })
      : createMemoryRateLimitStore();
    closers.push(() => rateLimits.close());
    // cache invalidation (later realtime fan-out and job cancel) across the instances
    const signals = await openSignalChannel(config, logger);
    closers.push(() => signals.close());
    // every request made for a tenant (OIDC discovery, later webhooks) goes through this one guard
    const outbound = createOutboundGuard({
      allowHosts: config.outboundAllowHosts,
      ...(options.resolveHost && { resolve: options.resolveHost }),
    });

    // the modules, in dependency order; each gets its own settings and the services it uses
    const secrets = await createSecretsModule({
      db,
      logger,
      config: sliceOf(config, secretsModule),
      dataDir: config.dataDir,
      databaseUrl: config.databaseUrl,
    });
    const audit = createAuditModule({ db });
    const plan: TenantSchemaPlan = { migrations: TENANT_MIGRATIONS, hooks: [] };
    const tenants = createTenantsModule({
      db,
      logger,
      config: sliceOf(config, tenantsModule),
      audit: audit.service,
      plan,
    });
    const identity = await createIdentityModule({
      db,
      logger,
      config: sliceOf(config, identityModule),
      registry,
      secrets: secrets.service,
      audit: audit.service,
      tenants: tenants.service,
      rateLimits,
      outbound,
      signals,
    });
    const storage = await createStorageModule({
      db,
      logger,
      config: sliceOf(config, storageModule),
      dataDir: config.dataDir,
      origin: { publicUrl: config.publicUrl, publicHosts: config.publicHosts },
      secrets: secrets.service,
      audit: audit.service,
      registry,
      tenants: tenants.service,
    });
    const jobs = await createJobsModule({
      db,
      logger,
      config: sliceOf(config, jobsModule),
      redisUrl: config.redisUrl,
      redisCommandTimeoutMs: config.redisCommandTimeoutMs,
      embedded: database.kind === 'pglite',
      audit: audit.service,
      outbound,
      shutdownTimeoutMs: config.shutdownTimeoutMs,
    });
    const search = createSearchModule({ db, config: sliceOf(config, searchModule), jobs: jobs.service });
    const events = await createEventsModule({
      db,
      logger,
      config: sliceOf(config, eventsModule),
      databaseUrl: config.databaseUrl,
      redisUrl: config.redisUrl,
      audit: audit.service,
      jobs: jobs.service,
      apiKeys: identity.service.apiKeys,
      rateLimits,
      metrics: {
        registry: metrics.registry,
        onPublished: (type) => metrics.eventsPublished.inc({ event_type: type }),
      },
    });
    const webhooks = createWebhooksModule({
      db,
      logger,
      config: sliceOf(config, webhooksModule),
      bus: events.service,
      jobs: jobs.service,
      secrets: secrets.service,
      audit: audit.service,
      apps: events.apps,
      outboundAllowHosts: config.outboundAllowHosts,
      rateLimits,
      ...(options.resolveHost && { resolveHost: options.resolveHost }),
    });
    const realtime = createRealtimeModule({
      db,
      logger,
      config: sliceOf(config, realtimeModule),
      signals,
      bus: events.service,
      apps: events.apps,
      authenticator: identity.service.authenticator,
      registry,
      metrics: metrics.registry,
      failures: { store: rateLimits, windowMs: config.rateLimitWindowMs, max: config.rateLimitAnonymous },
    });
    // in module order (the order of MODULES)
    const modules: PlexicaModule[] = [
      tenants,
      secrets,
      identity,
      audit,
      storage,
      jobs,
      search,
      events,
      webhooks,
      realtime,
    ];
    closers.push(async () => {
      for (const module of [...modules].reverse()) await module.close?.();
    });
    plan.hooks.push(...modules.flatMap((m) => (m.tenantLifecycle ? [m.tenantLifecycle] : [])));

    if (config.migrateOnStart) {
      const result = await tenants.service.migrateAll();
      if (result.failed.length > 0) logger.error({ failed: result.failed }, 'some tenants failed to migrate');
    }
    gauges.activeTenants = () => tenants.service.countActive();
    let bootstrapped: Promise<Bootstrap | undefined> | undefined;
    const bootstrapAdmin = () => {
      bootstrapped ??= bootstrapSuperAdmin(db, sliceOf(config, identityModule), logger);
      return bootstrapped;
    };

    // a retried create within a day gets the first answer back
    const idempotency = createIdempotencyStore(db, 86_400);
    const server = await createServer({
      config,
      logger,
      metrics,
      authenticator: identity.service.authenticator,
      registry,
      tenants: tenants.service,
      rateLimits,
      idempotency,
    });
    const checks: Record<string, HealthCheck> = {
      database: () => database.ping(config.healthTimeoutMs),
      // the data dir (embedded database, keys) and the filesystem blob store, when it is elsewhere
      disk: diskCheck(
        [
          config.dataDir,
          ...(config.storageDriver === 'filesystem' && config.storageDir ? [config.storageDir] : []),
        ],
        config.diskFreeMinMb * 1024 * 1024,
      ),
    };
    for (const module of modules) Object.assign(checks, module.health);
    if (redis) {
      checks.redis = async () => {
        const started = performance.now();
        await redis.ping();
        return performance.now() - started;
      };
    }
    await healthRoutes(server, {
      metricsToken: config.metricsToken,
      checks,
      // rate limits fail open without Redis; jobs on BullMQ cannot run or be enqueued
      essential: ['database', ...(config.jobsDriver === 'redis' ? ['redis'] : [])],
      timeoutMs: config.healthTimeoutMs,
      cacheMs: config.healthCacheMs,
      metricsText: async () => ({
        contentType: metrics.registry.contentType,
        body: await metrics.registry.metrics(),
      }),
    });
    for (const module of modules) await module.routes?.(server);
    await server.ready();

    const loops = createLoops(
      [
        ...modules.flatMap((m) => m.loops ?? []),
        {
          name: 'kernel.idempotency-purge',
          role: 'scheduler',
          intervalMs: config.purgeIntervalSeconds * 1000,
          runAtStart: true,
          run: () => idempotency.purgeExpired(),
        },
      ],
      { logger, registry: metrics.registry },
    );
    const inFlight = countInFlight(server.server);
    let closing: Promise<ShutdownReport> | undefined;
    const shutdown = () => {
      closing ??= shutDown({
        server,
        inFlight,
        loops,
        modules,
        closers,
        timeoutMs: config.shutdownTimeoutMs,
        logger,
      });
      return closing;
    };
    return {
      config,
      logger,
      database,
      server,
      registry,
      modules,
      services: {
        tenants: tenants.service,
        ...identity.service,
        secrets: secrets.service,
        audit: audit.service,
        storage: storage.service,
        jobs: jobs.service,
        schedules: jobs.schedules,
        search: search.service,
        events: events.service,
        apps: events.apps,
        eventLog: events.log,
        webhooks: webhooks.service,
        webhookDeliveries: webhooks.deliveries,
        realtime: realtime.service,
      },
      blobStore: storage.store,
      signals,
      bootstrapAdmin,
      async start() {
        const roles = rolesOf(config);
        for (const module of modules) await module.start?.(roles);
        loops.start(roles);
        const created = await bootstrapAdmin();
        let url: string | undefined;
        if (roles.has('api')) {
          try {
            url = await server.listen({ port: config.port, host: config.host });
          } catch (err) {
            if (created) {
              await undoBootstrap(db, created).catch(() => {});
              bootstrapped = undefined;
            }
            throw err;
          }
        }
        if (created) announceBootstrap(created, logger);
        return url;
      },
      shutdown,
      close: () => shutdown().then(() => undefined),
    };
  } catch (err) {
    // the start failed: release what was opened, and keep the first error the one thrown
    for (const close of closers.reverse())
      await close().catch((closeErr: unknown) =>
        logger.warn({ err: closeErr }, 'clean-up after a failed start'),
      );
    throw err;
  }
}
