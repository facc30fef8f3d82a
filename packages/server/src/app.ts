import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { type Logger, pino } from 'pino';
import type { PlexicaConfig } from './config.js';
import { healthRoutes } from './http/health.js';
import { createServer } from './http/server.js';
import type { Server } from './http/types.js';
import { isUniqueViolation } from './infra/database/errors.js';
import { type CoreDatabase, type Database, openDatabase } from './infra/database/index.js';
import { type Migration, migrateSchema } from './infra/database/migrator.js';
import { createIdempotencyStore, idempotencyMigrations } from './infra/idempotency.js';
import { createMetrics } from './infra/metrics.js';
import { createOutboundGuard } from './infra/net/outbound-guard.js';
import { createLoginFailures } from './infra/rate-limit/login-failures.js';
import {
  createMemoryRateLimitStore,
  createRedisRateLimitStore,
  type RateLimitStore,
} from './infra/rate-limit/store.js';
import { auditTenantMigrations } from './modules/audit/migrations.js';
import { auditDenials, auditRoutes } from './modules/audit/routes.js';
import { type AuditService, createAuditService } from './modules/audit/service.js';
import { type ApiKeysService, createApiKeysService } from './modules/identity/api-keys.js';
import { createAuthenticator } from './modules/identity/authenticate.js';
import { createIdentityLinksService } from './modules/identity/identity-links.js';
import { identityMigrations } from './modules/identity/migrations.js';
import {
  createIdentityProvidersService,
  createOidcVerifier,
  type IdentityProvidersService,
} from './modules/identity/oidc.js';
import { hashPassword } from './modules/identity/passwords.js';
import { CORE_PERMISSIONS } from './modules/identity/permissions.js';
import { createRolesService, type RolesService } from './modules/identity/roles.js';
import { accessRoutes } from './modules/identity/routes/access.js';
import { authRoutes } from './modules/identity/routes/auth.js';
import { userRoutes } from './modules/identity/routes/users.js';
import { createSessionsService, type SessionsService } from './modules/identity/sessions.js';
import { createTokenIssuer, type TokenIssuer } from './modules/identity/tokens.js';
import { createUsersService, type UsersService } from './modules/identity/users.js';
import { createBullMqDriver } from './modules/jobs/bullmq.js';
import { jobSchedulesMigrations, jobsMigrations } from './modules/jobs/migrations.js';
import { JOBS_PERMISSIONS } from './modules/jobs/permissions.js';
import { createPgBossDriver } from './modules/jobs/pg-boss.js';
import { jobRoutes } from './modules/jobs/routes.js';
import { createJobSchedulesService, type JobSchedulesService } from './modules/jobs/schedules.js';
import { createJobQueueService, type JobQueueService } from './modules/jobs/service.js';
import { PermissionRegistry } from './modules/permissions/registry.js';
import { resolveMasterKeys } from './modules/secrets/master-key.js';
import { secretsMigrations } from './modules/secrets/migrations.js';
import { createSecretsService, type SecretsService } from './modules/secrets/service.js';
import type { BlobStore } from './modules/storage/driver.js';
import { createFilesystemBlobStore } from './modules/storage/filesystem.js';
import { storageTenantMigrations } from './modules/storage/migrations.js';
import { STORAGE_PERMISSIONS } from './modules/storage/permissions.js';
import { storageRoutes } from './modules/storage/routes.js';
import { createS3BlobStore } from './modules/storage/s3.js';
import { createStorageService, type StorageService } from './modules/storage/service.js';
import { createUrlSigner } from './modules/storage/signing.js';
import { tenantsMigrations } from './modules/tenants/migrations.js';
import { tenantRoutes } from './modules/tenants/routes.js';
import { createTenantsService, type TenantsService } from './modules/tenants/service.js';

/** Migrations of the `core` schema, in the order they apply. */
export const CORE_MIGRATIONS: Migration[] = [
  ...tenantsMigrations,
  ...secretsMigrations,
  ...identityMigrations,
  ...idempotencyMigrations,
  ...jobsMigrations,
  ...jobSchedulesMigrations,
];
/** Migrations of every `tenant_{slug}` schema. */
export const TENANT_MIGRATIONS: Migration[] = [...auditTenantMigrations, ...storageTenantMigrations];

export interface Services {
  tenants: TenantsService;
  users: UsersService;
  sessions: SessionsService;
  apiKeys: ApiKeysService;
  roles: RolesService;
  providers: IdentityProvidersService;
  secrets: SecretsService;
  audit: AuditService;
  tokens: TokenIssuer;
  storage: StorageService;
  jobs: JobQueueService;
  schedules: JobSchedulesService;
}

export interface App {
  config: PlexicaConfig;
  logger: Logger;
  database: Database;
  server: Server;
  registry: PermissionRegistry;
  services: Services;
  /** Where file contents live (filesystem or S3). */
  blobStore: BlobStore;
  /** Set when this start created the first super admin with a generated password. */
  bootstrap: { email: string; generatedPassword?: string } | undefined;
  /** Runs the roles in `config.role`: HTTP for api, job handlers for worker, the purge loop for scheduler. @returns the URL when listening */
  start(): Promise<string | undefined>;
  /** Graceful: stop accepting, finish in-flight requests, stop loops, close engines. */
  close(): Promise<void>;
}

export function createLogger(config: PlexicaConfig): Logger {
  return pino({
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
export const migrateCore = (db: Kysely<CoreDatabase>): Promise<string[]> =>
  db.transaction().execute((trx) => migrateSchema(trx, 'core', CORE_MIGRATIONS));

/**
 * Wires the whole program by hand from `config`: nothing is created at import
 * time, so tests build as many isolated apps as they like.
 */
export async function createApp(config: PlexicaConfig, options: { logger?: Logger } = {}): Promise<App> {
  const logger = options.logger ?? createLogger(config);
  const closers: (() => Promise<void>)[] = [];
  const gauges = { activeTenants: async () => 0, activePlugins: async () => 0 };
  const metrics = createMetrics({
    activeTenants: () => gauges.activeTenants(),
    activePlugins: () => gauges.activePlugins(),
  });
  const database = await openDatabase(config, { onQuery: (event) => metrics.onQuery(event) });
  closers.push(() => database.close());
  try {
    const db = database.db;
    const masterKeys = await resolveMasterKeys(config, logger);
    const registry = new PermissionRegistry();
    registry.register('core', CORE_PERMISSIONS);
    registry.register('storage', STORAGE_PERMISSIONS);
    registry.register('jobs', JOBS_PERMISSIONS);

    const store = createBlobStore(config);
    closers.push(() => store.close());
    // before the services that record into it (storage, tenants, jobs)
    const audit = createAuditService(db);
    const storage = createStorageService({
      db,
      store,
      signer: createUrlSigner(masterKeys),
      limits: {
        maxFileSize: config.storageMaxFileSize,
        quotaBytes: config.storageQuotaBytes,
        signedUrlMaxSeconds: config.storageSignedUrlMaxSeconds,
      },
      audit,
      logger,
    });

    const tenants = createTenantsService({
      db,
      logger,
      tenantMigrations: TENANT_MIGRATIONS,
      retentionDays: config.tenantRetentionDays,
      hooks: [storage.lifecycle],
      audit,
    });
    if (config.migrateOnStart) {
      const applied = await migrateCore(db);
      if (applied.length > 0) logger.info({ applied }, 'applied core migrations');
      const result = await tenants.migrateAll();
      if (result.failed.length > 0) logger.error({ failed: result.failed }, 'some tenants failed to migrate');
    }
    gauges.activeTenants = () => tenants.countActive();
    gauges.activePlugins = async () =>
      Number(
        (
          await db
            .selectFrom('core.plugins')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .where('status', '=', 'active')
            .executeTakeFirstOrThrow()
        ).n,
      );

    const secrets = createSecretsService(db, masterKeys);
    const tokens = await createTokenIssuer({ db, secrets, ttlSeconds: config.accessTokenTtlSeconds, logger });
    // before the services: login counts failures per account in the same store
    let rateLimits: RateLimitStore;
    let redis: Redis | undefined;
    if (config.redisUrl) {
      redis = new Redis(config.redisUrl, {
        lazyConnect: true,
        maxRetriesPerRequest: 2,
        enableOfflineQueue: false,
      });
      redis.on('error', (err) => logger.warn({ err: err.message }, 'redis connection error'));
      await redis.connect();
      const client = redis;
      closers.push(async () => {
        await client.quit();
      });
      rateLimits = createRedisRateLimitStore(redis);
    } else {
      rateLimits = createMemoryRateLimitStore();
    }
    closers.push(() => rateLimits.close());

    const sessions = createSessionsService({
      db,
      tokens,
      tenants,
      audit,
      loginFailures: createLoginFailures(rateLimits, {
        maxFailures: config.loginMaxFailures,
        windowMs: config.loginFailureWindowSeconds * 1000,
      }),
      refreshTtlSeconds: config.refreshTokenTtlSeconds,
    });
    const roles = createRolesService({ db, registry, audit });
    const apiKeys = createApiKeysService({ db, registry, audit });
    const users = createUsersService({ db, registry, roles, sessions, apiKeys, audit });
    // every request made for a tenant (OIDC discovery and keys) goes through this one guard
    const outbound = createOutboundGuard({ allowHosts: config.outboundAllowHosts });
    const oidc = createOidcVerifier({ db, guard: outbound, logger });
    const providers = createIdentityProvidersService({
      db,
      registry,
      secrets,
      roles,
      audit,
      guard: outbound,
      logger,
    });
    const links = createIdentityLinksService({ db, registry, roles, audit, verifier: oidc });
    const authenticator = createAuthenticator({
      db,
      tokens,
      oidc,
      registry,
      logger,
    });
    const jobs = createJobQueueService({
      db,
      logger,
      audit,
      driver:
        config.jobsDriver === 'redis'
          ? createBullMqDriver({
              redisUrl: config.redisUrl!,
              prefix: config.jobsRedisPrefix,
              logger,
              leaseSeconds: config.jobsLeaseSeconds,
              retryDelaySeconds: config.jobsRetryDelaySeconds,
            })
          : createPgBossDriver({
              db,
              embedded: database.kind === 'pglite',
              logger,
              leaseSeconds: config.jobsLeaseSeconds,
              retryDelaySeconds: config.jobsRetryDelaySeconds,
              pollingIntervalSeconds: config.jobsPollIntervalSeconds,
            }),
    });
    closers.push(() => jobs.stop(config.shutdownTimeoutMs));
    const schedules = createJobSchedulesService({ db, jobs, audit, logger });
    const services: Services = {
      tenants,
      users,
      sessions,
      apiKeys,
      roles,
      providers,
      secrets,
      audit,
      tokens,
      storage,
      jobs,
      schedules,
    };

    const bootstrap = await bootstrapSuperAdmin(db, config, logger);

    // a retried create within a day gets the first answer back
    const idempotency = createIdempotencyStore(db, 86_400);
    const server = await createServer({
      config,
      logger,
      metrics,
      authenticator,
      registry,
      tenants,
      rateLimits,
      idempotency,
    });
    // before any route: a refusal anywhere is recorded by this one hook
    auditDenials(server, audit);
    const checks: Record<string, () => Promise<number>> = {
      database: () => database.ping(),
      storage: () => store.ping(),
    };
    if (redis) {
      const client = redis;
      checks.redis = async () => {
        const started = performance.now();
        await client.ping();
        return performance.now() - started;
      };
    }
    await healthRoutes(server, {
      checks,
      ready: () => database.ping(),
      metricsText: async () => ({
        contentType: metrics.registry.contentType,
        body: await metrics.registry.metrics(),
      }),
    });
    await tenantRoutes(server, { tenants });
    await authRoutes(server, { sessions, tokens });
    await userRoutes(server, { users, sessions, tenants });
    await accessRoutes(server, { apiKeys, roles, providers, links, registry });
    await auditRoutes(server, { audit });
    await storageRoutes(server, { storage, tenants, registry, config });
    await jobRoutes(server, { jobs, schedules });
    await server.ready();

    let purgeTimer: NodeJS.Timeout | undefined;
    let cronTimer: NodeJS.Timeout | undefined;
    let sweepTimer: NodeJS.Timeout | undefined;
    let tickInFlight: Promise<unknown> | undefined;
    let pendingDiscovery: Promise<unknown> | undefined;
    let closing: Promise<void> | undefined;
    return {
      config,
      logger,
      database,
      server,
      registry,
      services,
      blobStore: store,
      bootstrap,
      async start() {
        const roles = config.role === 'all' ? ['api', 'scheduler', 'worker'] : [config.role];
        if (roles.includes('worker')) await jobs.start();
        if (roles.includes('scheduler')) {
          const purge = () =>
            Promise.all([tenants.purgeExpired(), idempotency.purgeExpired()]).catch((err: unknown) =>
              logger.error({ err }, 'purge failed; retrying next interval'),
            );
          purgeTimer = setInterval(purge, config.purgeIntervalSeconds * 1000);
          purgeTimer.unref();
          void purge();
          // cron ticks: every second; each due schedule is enqueued by exactly one scheduler
          cronTimer = setInterval(() => {
            tickInFlight ??= schedules
              .tick()
              .catch((err: unknown) => logger.error({ err }, 'cron tick failed; retrying next second'))
              .finally(() => {
                tickInFlight = undefined;
              });
          }, 1000);
          cronTimer.unref();
          // jobs whose delivery a crash interrupted (engines that cannot join a transaction)
          sweepTimer = setInterval(() => {
            jobs.sweep().catch((err: unknown) => logger.error({ err }, 'job sweep failed'));
          }, 30_000);
          sweepTimer.unref();
        }
        if (roles.includes('api')) {
          // providers saved before save-time discovery existed get their key set URL here
          pendingDiscovery = providers
            .discoverPending()
            .catch((err: unknown) => logger.error({ err }, 'OIDC discovery at start-up failed'));
          return server.listen({ port: config.port, host: config.host });
        }
        return undefined;
      },
      close() {
        closing ??= (async () => {
          clearInterval(purgeTimer);
          clearInterval(cronTimer);
          clearInterval(sweepTimer);
          await tickInFlight;
          await pendingDiscovery;
          await server.close();
          for (const close of closers.reverse()) await close();
        })();
        return closing;
      },
    };
  } catch (err) {
    for (const close of closers.reverse()) await close().catch(() => {});
    throw err;
  }
}

/** The blob store `config.storageDriver` names. */
export function createBlobStore(config: PlexicaConfig) {
  if (config.storageDriver === 's3') {
    return createS3BlobStore({
      endpoint: config.s3Endpoint,
      region: config.s3Region,
      accessKeyId: config.s3AccessKeyId,
      secretAccessKey: config.s3SecretAccessKey,
      forcePathStyle: config.s3ForcePathStyle,
      mode: config.s3BucketMode,
      bucket: config.s3Bucket,
      bucketPrefix: config.s3BucketPrefix ?? '',
    });
  }
  return createFilesystemBlobStore(config.storageDir ?? path.join(config.dataDir, 'storage'));
}

/**
 * The first start creates a super admin: credentials from PLEXICA_ADMIN_EMAIL /
 * PLEXICA_ADMIN_PASSWORD, or a generated password printed once.
 */
async function bootstrapSuperAdmin(db: Kysely<CoreDatabase>, config: PlexicaConfig, logger: Logger) {
  const existing = await db
    .selectFrom('core.users')
    .select('id')
    .where('is_super_admin', '=', true)
    .limit(1)
    .executeTakeFirst();
  if (existing) return undefined;
  const email = config.adminEmail ?? 'admin@plexica.local';
  const generated = config.adminPassword ? undefined : randomBytes(18).toString('base64url');
  const password = config.adminPassword ?? generated!;
  try {
    await db
      .insertInto('core.users')
      .values({
        tenant_id: null,
        email,
        email_normalized: email.trim().toLowerCase(),
        password_hash: await hashPassword(password),
        is_super_admin: true,
        roles: JSON.stringify(['super_admin']),
        display_name: 'Super admin',
      })
      .execute();
  } catch (err) {
    if (isUniqueViolation(err)) return undefined; // another instance won the race
    throw err;
  }
  if (generated) {
    logger.warn({ email }, 'created the super admin with a generated password (printed once to stderr)');
    process.stderr.write(
      `\n  Plexica super admin: ${email}\n  password: ${generated}\n  (shown once; set PLEXICA_ADMIN_PASSWORD to choose it)\n\n`,
    );
  } else {
    logger.info({ email }, 'created the super admin from PLEXICA_ADMIN_EMAIL/PLEXICA_ADMIN_PASSWORD');
  }
  return { email, ...(generated && { generatedPassword: generated }) };
}
