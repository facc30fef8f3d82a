import type { ConfigFragment } from '../../infra/options.js';

export const STORAGE_DRIVERS = ['filesystem', 's3'] as const;
export type StorageDriver = (typeof STORAGE_DRIVERS)[number];
export const S3_BUCKET_MODES = ['bucket', 'prefix'] as const;

/** The storage module's settings: where file contents live and the limits on them. */
export interface StorageConfig {
  storageDriver: (typeof STORAGE_DRIVERS)[number];
  storageDir: string | undefined;
  storageMaxFileSize: number;
  storageQuotaBytes: number;
  storageSignedUrlMaxSeconds: number;
  s3Endpoint: string | undefined;
  s3Region: string;
  s3AccessKeyId: string | undefined;
  s3SecretAccessKey: string | undefined;
  s3ForcePathStyle: boolean;
  s3BucketMode: (typeof S3_BUCKET_MODES)[number];
  s3Bucket: string | undefined;
  s3BucketPrefix: string | undefined;
  storageOrphanGraceSeconds: number;
  storageOrphanSweepSeconds: number;
}

/** Every setting of this fragment, its environment variable, type and default. */
export const storageOptions: ConfigFragment<StorageConfig>['options'] = {
  storageDriver: {
    env: 'PLEXICA_STORAGE_DRIVER',
    kind: { type: 'enum', values: STORAGE_DRIVERS },
    default: 'filesystem',
    description: 'Where file contents live: the data dir, or any S3 API',
  },
  storageDir: {
    env: 'PLEXICA_STORAGE_DIR',
    kind: { type: 'string' },
    description:
      'Root of the filesystem driver (default <data dir>/storage); one directory tenant-{id} per tenant',
  },
  storageMaxFileSize: {
    env: 'PLEXICA_STORAGE_MAX_FILE_SIZE',
    kind: { type: 'int', min: 1, max: 5 * 1024 ** 4 },
    default: 5 * 1024 ** 3,
    description: 'Largest file in bytes (a tenant may override: settings.storageMaxFileSize)',
  },
  storageQuotaBytes: {
    env: 'PLEXICA_STORAGE_QUOTA',
    kind: { type: 'int', min: 0, max: Number.MAX_SAFE_INTEGER },
    default: 0,
    description:
      'Bytes each tenant may store, 0 = unlimited (a tenant may override: settings.storageQuotaBytes)',
  },
  storageSignedUrlMaxSeconds: {
    env: 'PLEXICA_STORAGE_SIGNED_URL_MAX_TTL',
    kind: { type: 'int', min: 1, max: 604_800 },
    default: 604_800,
    description: 'Longest lifetime of a signed URL in seconds (S3 allows 7 days)',
  },
  s3Endpoint: {
    env: 'PLEXICA_S3_ENDPOINT',
    kind: { type: 'url', protocols: ['http:', 'https:'] },
    description: 'S3 endpoint (MinIO, R2, …); unset = AWS for the region',
  },
  s3Region: {
    env: 'PLEXICA_S3_REGION',
    kind: { type: 'string' },
    default: 'us-east-1',
    description: 'S3 region',
  },
  s3AccessKeyId: {
    env: 'PLEXICA_S3_ACCESS_KEY_ID',
    kind: { type: 'string' },
    description: 'S3 access key; unset = the AWS default credential chain',
  },
  s3SecretAccessKey: {
    env: 'PLEXICA_S3_SECRET_ACCESS_KEY',
    kind: { type: 'string' },
    description: 'S3 secret key',
  },
  s3ForcePathStyle: {
    env: 'PLEXICA_S3_FORCE_PATH_STYLE',
    kind: { type: 'bool' },
    default: false,
    description: 'Path-style S3 URLs (MinIO needs true)',
  },
  s3BucketMode: {
    env: 'PLEXICA_S3_BUCKET_MODE',
    kind: { type: 'enum', values: S3_BUCKET_MODES },
    default: 'bucket',
    description: 'bucket: a bucket tenant-{id} per tenant; prefix: prefix tenant-{id}/ in PLEXICA_S3_BUCKET',
  },
  s3Bucket: {
    env: 'PLEXICA_S3_BUCKET',
    kind: { type: 'string' },
    description: 'The shared bucket in prefix mode',
  },
  s3BucketPrefix: {
    env: 'PLEXICA_S3_BUCKET_PREFIX',
    kind: { type: 'string' },
    description: 'Put before tenant-{id} in bucket names (bucket names are global on AWS), e.g. acme-prod-',
  },
  storageOrphanGraceSeconds: {
    env: 'PLEXICA_STORAGE_ORPHAN_GRACE',
    kind: { type: 'int', min: 60, max: 30 * 86_400 },
    default: 3600,
    description:
      'A blob no file references (left by a crash mid-upload), or an S3 multipart upload left open, is removed once this old; must exceed the longest upload',
  },
  storageOrphanSweepSeconds: {
    env: 'PLEXICA_STORAGE_ORPHAN_SWEEP_INTERVAL',
    kind: { type: 'int', min: 10, max: 86_400 },
    default: 3600,
    description: 'How often the scheduler looks for orphaned blobs and open uploads',
  },
};
