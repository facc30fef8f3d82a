import type { Logger } from 'pino';
import type { PlexicaConfig } from '../config/index.js';
import type { Server } from '../http/types.js';
import type { Database } from '../infra/database/index.js';
import type { SignalChannel } from '../infra/signals/index.js';
import type { PlexicaModule } from '../module.js';
import type { AuditService } from '../modules/audit/index.js';
import type { AppsService, EventBus, PlatformEventsService } from '../modules/events/index.js';
import type {
  ApiKeysService,
  Bootstrap,
  IdentityProvidersService,
  PasswordChangesService,
  PrincipalCache,
  RolesService,
  SessionsService,
  TokenIssuer,
  UsersService,
} from '../modules/identity/index.js';
import type { JobQueueService, JobSchedulesService } from '../modules/jobs/index.js';
import type { RealtimeService } from '../modules/realtime/index.js';
import type { SearchService } from '../modules/search/index.js';
import type { SecretsService } from '../modules/secrets/index.js';
import type { BlobStore, StorageService } from '../modules/storage/index.js';
import type { TenantsService } from '../modules/tenants/index.js';
import type { WebhookDeliveryLog, WebhookEndpointsService } from '../modules/webhooks/index.js';
import type { PermissionRegistry } from '../permissions.js';
import type { ShutdownReport } from './shutdown.js';

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
  search: SearchService;
  realtime: RealtimeService;
  events: EventBus;
  apps: AppsService;
  eventLog: PlatformEventsService;
  webhooks: WebhookEndpointsService;
  webhookDeliveries: WebhookDeliveryLog;
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
   * PLEXICA_ADMIN_PASSWORD, or a generated password). `start` calls it before
   * listening and prints a generated password only once the port is bound; a
   * failed listen takes the new admin back, so the next start makes and prints
   * another instead of a password nobody saw. Idempotent. @returns what it created
   */
  bootstrapAdmin(): Promise<Bootstrap | undefined>;
  /** Runs the roles in `config.role`: HTTP for api, job handlers for worker, loops for scheduler. @returns the URL when listening */
  start(): Promise<string | undefined>;
  /**
   * Graceful: stop accepting and fetching, finish in-flight requests and jobs within
   * `PLEXICA_SHUTDOWN_TIMEOUT_MS`, then close modules and engines. @returns what the timeout cut
   */
  shutdown(): Promise<ShutdownReport>;
  /** `shutdown`, for callers that do not need the report. */
  close(): Promise<void>;
}
