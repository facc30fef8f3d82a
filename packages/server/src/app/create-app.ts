import type { Redis } from 'ioredis';
import { type Logger, pino } from 'pino';
import { type PlexicaConfig, sliceOf } from '../config/index.js';
import type { Server } from '../http/types.js';
import { type Database, type Executor, openDatabase } from '../infra/database/index.js';
import { type Migration, migrateSchema } from '../infra/database/migrator.js';
import { createIdempotencyStore, idempotencyMigrations } from '../infra/idempotency.js';
import { createMetrics } from '../infra/metrics.js';
import { createOutboundGuard } from '../infra/net/outbound-guard.js';
import {
  createMemoryRateLimitStore,
  createRedisRateLimitStore,
  type RateLimitStore,
} from '../infra/rate-limit/store.js';
import { openSignalChannel, type SignalChannel } from '../infra/signals/index.js';
import { type HealthCheck, type PlexicaModule, PROCESS_ROLES, type ProcessRole } from '../module.js';
import { type AuditService, createAuditModule } from '../modules/audit/index.js';
import {
  type AppsService,
  createEventsModule,
  type EventBus,
  eventsModule,
  type PlatformEventsService,
} from '../modules/events/index.js';
import {
  type ApiKeysService,
  type Bootstrap,
  bootstrapSuperAdmin,
  createIdentityModule,
  type IdentityProvidersService,
  identityModule,
  type PasswordChangesService,
  type PrincipalCache,
  type RolesService,
  type SessionsService,
  type TokenIssuer,
  type UsersService,
} from '../modules/identity/index.js';
import { MODULES } from '../modules/index.js';
import {
  createJobsModule,
  type JobQueueService,
  type JobSchedulesService,
  jobsModule,
} from '../modules/jobs/index.js';
import { createRealtimeModule, type RealtimeService, realtimeModule } from '../modules/realtime/index.js';
import { createSecretsModule, type SecretsService, secretsModule } from '../modules/secrets/index.js';
import {
  type BlobStore,
  createStorageModule,
  type StorageService,
  storageModule,
} from '../modules/storage/index.js';
import {
  createTenantsModule,
  type TenantSchemaPlan,
  type TenantsService,
  tenantsModule,
} from '../modules/tenants/index.js';
import {
  createWebhooksModule,
  type WebhookDeliveryLog,
  type WebhookEndpointsService,
  webhooksModule,
} from '../modules/webhooks/index.js';
import { PermissionRegistry } from '../permissions.js';
import { healthRoutes } from './health.js';
import { createLoops } from './loops.js';
import { createServer } from './server.js';

/** Migrations of the `core` schema in the order they apply: the kernel's, then each module's in list order. */
export const CORE_MIGRATIONS: Migration[] = [
  ...idempotencyMigrations,
  ...MODULES.flatMap((m): Migration[] => m.coreMigrations ?? []),
];
/** Migrations of every `tenant_{slug}` schema, in module order. */
export const TENANT_MIGRATIONS: Migration[] = MODULES.flatMap((m): Migration[] => m.tenantMigrations ?? []);

/** The services of every module, by the names the CLI, tests and benchmarks use. */
export interface Services {
  tenants: TenantsService;
  users: UsersService;
  sessions: SessionsService;
  apiKeys: ApiKeysService;
  roles: RolesService;
  providers: IdentityProvidersService;
  passwords: PasswordChangesService;
  secrets: SecretsService;
  audit: AuditService;
  tokens: TokenIssuer;
  principals: PrincipalCache;
  storage: StorageService;
  jobs: JobQueueService;
  schedules: JobSchedulesService;
  events: EventBus;
  apps: AppsService;
  eventLog: PlatformEventsService;
  webhooks: WebhookEndpointsService;
  webhookDeliveries: WebhookDeliveryLog;
  realtime: RealtimeService;
}

export interface App {
  config: PlexicaConfig;
  logger: Logger;
  database: Database;
  server: Server;
  registry: PermissionRegistry;
  services: Services;
  /** The running modules, in module order. */
  modules: PlexicaModule[];
  /** The cluster signal channel (cache invalidation; realtime and job cancel build on it). */
  signals: SignalChannel;
  /** Where file contents live (filesystem or S3). */
  blobStore: BlobStore;
  /**
   * Creates the first super admin if there is none (PLEXICA_ADMIN_EMAIL /
   * PLEXICA_ADMIN_PASSWORD, or a generated password printed once); `start` calls
   * it once the port is bound, so a port clash never prints a password that is
   * then lost. Idempotent. @returns what it created, when it did
   */
  bootstrapAdmin(): Promise<Bootstrap | undefined>;
  /** Runs the roles in `config.role`: HTTP for api, job handlers for worker, loops for scheduler. @returns the URL when listening */
  start(): Promise<string | undefined>;
  /** Graceful: stop accepting, finish in-flight requests, stop loops, close modules and engines. */
  close(): Promise<void>;
}

/**
 * JSON lines for log collectors; for a person at a terminal (`auto` on a TTY,
 * or `pretty`), pino-pretty's coloured one-line form instead.
 */
export function createLogger(config: Pick<PlexicaConfig, 'logLevel' | 'logFormat'>): Logger {
  const pretty =
    config.logFormat === 'pretty' || (config.logFormat === 'auto' && process.stdout.isTTY === true);
  return pino({
    ...(pretty && {
      transport: {
        target: 'pino-pretty',
        options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' },
      },
    }),
    level: config.logLevel,
    base: { service: 'plexica' },
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        '*.password',
        '*.accessToken',
        '*.refreshToken',
        '*.secret',
        '*.clientSecret',
        '*.masterKey',
        'password',
        'secret',
      ],
      censor: '[redacted]',
    },
  });
}

/** Applies pending `core` migrations in one transaction. @returns ids applied */
export const migrateCore = (db: Executor): Promise<string[]> =>
  db.transaction().execute((trx) => migrateSchema(trx, 'core', CORE_MIGRATIONS));

const rolesOf = (config: PlexicaConfig): ReadonlySet<ProcessRole> =>
  new Set(config.role === 'all' ? PROCESS_ROLES : [config.role]);

/**
 * Wires the whole program by hand from `config`: nothing is created at import
 * time, so tests build as many isolated apps as they like. Each module is
 * created with typed deps (its own settings slice, the services it uses), then
 * the module list is walked for routes, health checks, loops, lifecycle hooks,
 * start and close.
 */
export async function createApp(config: PlexicaConfig, options: { logger?: Logger } = {}): Promise<App> {
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
    const redis = config.redisUrl ? await connectRedis(config.redisUrl, logger) : undefined;
    if (redis) closers.push(() => redis.quit().then(() => undefined));
    const rateLimits: RateLimitStore = redis
      ? createRedisRateLimitStore(redis)
      : createMemoryRateLimitStore();
    closers.push(() => rateLimits.close());
    // cache invalidation (later realtime fan-out and job cancel) across the instances
    const signals = await openSignalChannel(config, logger);
    closers.push(() => signals.close());
    // every request made for a tenant (OIDC discovery, later webhooks) goes through this one guard
    const outbound = createOutboundGuard({ allowHosts: config.outboundAllowHosts });

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
    });
    const jobs = await createJobsModule({
      db,
      logger,
      config: sliceOf(config, jobsModule),
      redisUrl: config.redisUrl,
      embedded: database.kind === 'pglite',
      audit: audit.service,
      outbound,
      shutdownTimeoutMs: config.shutdownTimeoutMs,
    });
    const events = await createEventsModule({
      db,
      logger,
      config: sliceOf(config, eventsModule),
      databaseUrl: config.databaseUrl,
      redisUrl: config.redisUrl,
      audit: audit.service,
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
    const checks: Record<string, HealthCheck> = { database: () => database.ping() };
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
      ready: () => database.ping(),
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
    let closing: Promise<void> | undefined;
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
        const url = roles.has('api')
          ? await server.listen({ port: config.port, host: config.host })
          : undefined;
        await bootstrapAdmin();
        return url;
      },
      close() {
        closing ??= (async () => {
          await loops.stop();
          await server.close();
          for (const close of closers.reverse()) await close();
        })();
        return closing;
      },
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

async function connectRedis(url: string, logger: Logger): Promise<Redis> {
  // imported when configured: ioredis is start-up time an embedded install should not pay
  const { Redis } = await import('ioredis');
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2, enableOfflineQueue: false });
  redis.on('error', (err) => logger.warn({ err: err.message }, 'redis connection error'));
  await redis.connect();
  return redis;
}
