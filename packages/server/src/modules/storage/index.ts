import type { Logger } from 'pino';
import type { Executor } from '../../infra/database/index.js';
import type { ModuleDefinition, PlexicaModule } from '../../module.js';
import type { PermissionRegistry } from '../../permissions.js';
import type { AuditService } from '../audit/index.js';
import type { SecretsService } from '../secrets/index.js';
import type { TenantsService } from '../tenants/index.js';
import { type StorageConfig, storageOptions } from './config.js';
import { BLOB_STORES, type BlobStore, createBlobStore } from './drivers/index.js';
import { storageTenantMigrations } from './migrations.js';
import { createOrphanSweep } from './orphan-sweep.js';
import { STORAGE_PERMISSIONS } from './permissions.js';
import { type PublicOrigin, storageRoutes } from './routes/index.js';
import { createStorageService, type StorageService } from './service.js';
import { createUrlSigner } from './signing.js';

export type { StorageConfig } from './config.js';
export type { BlobStore } from './drivers/index.js';
export type { FileInfo, StorageService } from './service.js';

/** Files per tenant: path → blob metadata in the tenant schema, contents in a blob store. */
export const storageModule: ModuleDefinition<StorageConfig> = {
  name: 'storage',
  config: {
    options: storageOptions,
    validate: (config) => BLOB_STORES[config.storageDriver].validate(config),
  },
  permissions: STORAGE_PERMISSIONS,
  tenantMigrations: storageTenantMigrations,
};

export async function createStorageModule(deps: {
  db: Executor;
  logger: Logger;
  config: StorageConfig;
  /** The filesystem driver's default root is `<dataDir>/storage`. */
  dataDir: string;
  origin: PublicOrigin;
  secrets: SecretsService;
  audit: AuditService;
  registry: PermissionRegistry;
  /** Whose namespaces the orphan sweep walks. */
  tenants: Pick<TenantsService, 'list'>;
}): Promise<
  PlexicaModule<StorageService> & { store: BlobStore; sweepOrphans: ReturnType<typeof createOrphanSweep> }
> {
  const { config } = deps;
  const store = await createBlobStore(config, { dataDir: deps.dataDir, logger: deps.logger });
  const service = createStorageService({
    db: deps.db,
    store,
    signer: createUrlSigner(deps.secrets.masterKeys),
    limits: {
      maxFileSize: config.storageMaxFileSize,
      quotaBytes: config.storageQuotaBytes,
      signedUrlMaxSeconds: config.storageSignedUrlMaxSeconds,
    },
    audit: deps.audit,
    logger: deps.logger,
  });
  const sweepOrphans = createOrphanSweep({
    db: deps.db,
    store,
    tenants: deps.tenants,
    graceMs: config.storageOrphanGraceSeconds * 1000,
    logger: deps.logger,
  });
  return {
    name: 'storage',
    service,
    store,
    sweepOrphans,
    loops: [
      {
        name: 'storage.orphan-sweep',
        role: 'scheduler',
        intervalMs: config.storageOrphanSweepSeconds * 1000,
        run: (signal) => sweepOrphans(signal).then(() => undefined),
      },
    ],
    routes: (server) =>
      storageRoutes(server, { storage: service, registry: deps.registry, origin: deps.origin }),
    tenantLifecycle: service.lifecycle,
    health: { storage: () => store.ping() },
    close: () => store.close(),
  };
}
