import path from 'node:path';
import type { Logger } from 'pino';
import type { StorageConfig, StorageDriver } from '../config.js';
import type { BlobStore } from './blob-store.js';

export type { BlobStore, ByteRange } from './blob-store.js';

interface BlobStoreDriver {
  /** Problems of the settings this driver needs, named by their variables. */
  validate(config: StorageConfig): string[];
  /** Engines are imported when chosen: the AWS SDK costs start-up time nobody on disk should pay. */
  create(config: StorageConfig, deps: { dataDir: string; logger: Logger }): Promise<BlobStore>;
}

/**
 * One driver per `PLEXICA_STORAGE_DRIVER` value: a value without a driver
 * does not compile, and a typo in the setting is refused at boot by its enum.
 */
export const BLOB_STORES: Record<StorageDriver, BlobStoreDriver> = {
  filesystem: {
    validate: () => [],
    async create(config, { dataDir }) {
      const { createFilesystemBlobStore } = await import('./filesystem.js');
      return createFilesystemBlobStore(config.storageDir ?? path.join(dataDir, 'storage'));
    },
  },
  s3: {
    validate(config) {
      const problems: string[] = [];
      if (config.s3BucketMode === 'prefix' && !config.s3Bucket)
        problems.push('PLEXICA_S3_BUCKET: required when PLEXICA_S3_BUCKET_MODE is prefix');
      if (Boolean(config.s3AccessKeyId) !== Boolean(config.s3SecretAccessKey))
        problems.push('PLEXICA_S3_ACCESS_KEY_ID and PLEXICA_S3_SECRET_ACCESS_KEY: give both or neither');
      const prefix = config.s3BucketPrefix;
      if (prefix && !/^[a-z0-9][a-z0-9.-]{0,18}$/.test(prefix))
        problems.push(
          'PLEXICA_S3_BUCKET_PREFIX: lowercase letters, digits, "." and "-", at most 19 characters',
        );
      return problems;
    },
    async create(config, { logger }) {
      const { createS3BlobStore } = await import('./s3.js');
      return createS3BlobStore({
        logger,
        endpoint: config.s3Endpoint,
        region: config.s3Region,
        accessKeyId: config.s3AccessKeyId,
        secretAccessKey: config.s3SecretAccessKey,
        forcePathStyle: config.s3ForcePathStyle,
        mode: config.s3BucketMode,
        bucket: config.s3Bucket,
        bucketPrefix: config.s3BucketPrefix ?? '',
      });
    },
  },
};

/** The blob store `config.storageDriver` names. */
export const createBlobStore = (
  config: StorageConfig,
  deps: { dataDir: string; logger: Logger },
): Promise<BlobStore> => BLOB_STORES[config.storageDriver].create(config, deps);
