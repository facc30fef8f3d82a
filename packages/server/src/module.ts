import type { TenantRef } from './context.js';
import type { Server } from './http/types.js';
import type { Executor } from './infra/database/index.js';
import type { Migration } from './infra/database/migrator.js';
import type { ConfigFragment } from './infra/options.js';
import type { PermissionDefinition } from './permissions.js';

/** The roles a process can play; `all` in config means every one of them. */
export const PROCESS_ROLES = ['api', 'worker', 'scheduler'] as const;
export type ProcessRole = (typeof PROCESS_ROLES)[number];

/**
 * Work a module does when a tenant is created, suspended or purged (storage
 * namespaces, sessions to end…). `provision` and `suspend` run inside the
 * tenant's own transaction: if one throws, the change does not happen.
 */
export interface TenantLifecycleHook {
  provision?(tenant: TenantRef, trx: Executor): Promise<void>;
  suspend?(tenant: TenantRef, trx: Executor): Promise<void>;
  purge?(tenant: TenantRef): Promise<void>;
  /** After a change to the tenant (status, settings, deletion) has committed: drop what was derived from it. */
  changed?(tenant: TenantRef): Promise<void>;
}

/** A health check: resolves with its round-trip time in ms, throws when the dependency is down. */
export type HealthCheck = () => Promise<number>;

/**
 * Background work that repeats (purge, cron tick, sweeps). The app runs it on
 * the processes playing `role`, every `intervalMs`, never two runs at once,
 * logs and counts failures (`plexica_loop_failures_total`), and waits for a
 * run in flight on close.
 */
export interface LoopDefinition {
  /** `module.what`, e.g. `jobs.sweep`: the metric label and the log field. */
  name: string;
  role: ProcessRole;
  intervalMs: number;
  /** Run once when the loop starts instead of after the first interval. */
  runAtStart?: boolean;
  /** `signal` aborts when the app closes: long runs should stop early. */
  run(signal: AbortSignal): Promise<unknown>;
}

/**
 * What a module is before anything runs: its name, settings, permission keys
 * and migrations. Front files export one (`storageModule`), `modules/index.ts`
 * lists them in order, and that list decides the order of migrations, of the
 * README configuration table and of permission registration.
 */
export interface ModuleDefinition<C = unknown> {
  name: string;
  config?: ConfigFragment<C>;
  permissions?: PermissionDefinition[];
  /** Migrations of the `core` schema; ids are prefixed by the module (`jobs/0001_jobs`). */
  coreMigrations?: Migration[];
  /** Migrations of every `tenant_{slug}` schema. */
  tenantMigrations?: Migration[];
}

/**
 * A module at run time, as its front file's `create<Name>Module(deps)` builds
 * it. `createApp` wires each by hand with typed deps, then walks them: routes
 * are added, health checks and loops join the app's, lifecycle hooks run on
 * tenant changes, `start` runs with the process roles, and `close` runs in
 * reverse order on shutdown.
 *
 * @example
 * export function createAuditModule(deps: { db: Executor }): PlexicaModule<AuditService> {
 *   const service = createAuditService(deps.db);
 *   return { name: 'audit', service, routes: (server) => auditRoutes(server, { audit: service }) };
 * }
 */
export interface PlexicaModule<S = unknown> {
  name: string;
  service: S;
  tenantLifecycle?: TenantLifecycleHook;
  health?: Record<string, HealthCheck>;
  loops?: LoopDefinition[];
  routes?(server: Server): Promise<void>;
  /** Called by `start` with the roles this process plays, after migrations and before listening. */
  start?(roles: ReadonlySet<ProcessRole>): Promise<void>;
  close?(): Promise<void>;
}
