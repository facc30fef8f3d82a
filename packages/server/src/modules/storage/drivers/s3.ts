import { PassThrough, type Readable, Transform } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  paginateListObjectsV2,
  S3Client,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Logger } from 'pino';
import { isPlexicaError, PlexicaError } from '../../../infra/errors.js';
import { assertBlobKey, type BlobStore, type ByteRange, namespaceOf } from './blob-store.js';

export interface S3BlobStoreOptions {
  endpoint: string | undefined;
  region: string;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  /** MinIO and most self-hosted engines need path-style URLs. */
  forcePathStyle: boolean;
  /** `bucket`: one bucket per tenant; `prefix`: one shared bucket, a prefix per tenant. */
  mode: 'bucket' | 'prefix';
  /** The shared bucket in `prefix` mode. */
  bucket: string | undefined;
  /** Put before `tenant-{id}` in bucket names (bucket names are global on AWS). */
  bucketPrefix: string;
  /** Where clean-up failures are reported. */
  logger?: Pick<Logger, 'warn'>;
  /** Tries per request: 1 + 3 retries with exponential backoff and jitter (seed 000 edge 2). */
  maxAttempts?: number;
}

/** Multipart upload part size: memory per upload is about partSize × queueSize. */
const PART_SIZE = 8 * 1024 * 1024;
const QUEUE_SIZE = 2;
/** CopyObject copies at most 5 GiB in one call; larger blobs copy in parts. */
const MAX_SINGLE_COPY = 5 * 1024 ** 3;
const COPY_PART = 512 * 1024 ** 2;

const NETWORK_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

interface S3Failure {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
}

const servedRange = (header: string | undefined) => {
  const match = header ? /^bytes (\d+)-(\d+)\//.exec(header) : null;
  return match ? { start: Number(match[1]), end: Number(match[2]) } : undefined;
};

/**
 * HTTP lets a server ignore Range and send more (the whole object; s3rver sends
 * everything for `bytes=0-0`): cut the asked range out of what came, which
 * starts at byte `offset`.
 */
function sliceOf(range: ByteRange, offset: number): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      const from = Math.max(range.start - offset, 0);
      const to = Math.min(range.end + 1 - offset, chunk.length);
      offset += chunk.length;
      done(null, from < to ? chunk.subarray(from, to) : undefined);
    },
  });
}

/** S3 errors → our kinds: a missing key is PLX_STORAGE_BLOB_MISSING, the rest PLX_STORAGE_UNAVAILABLE. */
function translate(err: unknown, what: string): never {
  if (isPlexicaError(err)) throw err;
  const e = err as S3Failure;
  const status = e.$metadata?.httpStatusCode;
  if (e.name === 'NoSuchKey' || e.name === 'NotFound' || (status === 404 && e.name !== 'NoSuchBucket')) {
    throw new PlexicaError('PLX_STORAGE_BLOB_MISSING', { detail: `${what}: not found`, cause: err });
  }
  const attempts = e.$metadata?.attempts;
  const reason =
    e.code && NETWORK_ERRORS.has(e.code)
      ? `cannot reach object storage (${e.code})`
      : e.name === 'AccessDenied' || e.name === 'InvalidAccessKeyId' || e.name === 'SignatureDoesNotMatch'
        ? `object storage refused the configured credentials (${e.name})`
        : `object storage failed (${e.name ?? 'error'}${status ? ` ${status}` : ''})`;
  throw new PlexicaError('PLX_STORAGE_UNAVAILABLE', {
    detail: `${what}: ${reason}${attempts ? ` after ${attempts} attempts` : ''}`,
    cause: err,
  });
}

/** Blobs in any S3 API (AWS, MinIO, …) through the AWS SDK v3. */
export function createS3BlobStore(options: S3BlobStoreOptions): BlobStore {
  if (options.mode === 'prefix' && !options.bucket) throw new TypeError('prefix mode needs a bucket');
  const client = new S3Client({
    region: options.region,
    endpoint: options.endpoint,
    forcePathStyle: options.forcePathStyle,
    maxAttempts: options.maxAttempts ?? 4,
    retryMode: 'standard',
    // only what S3 requires: MinIO and s3rver choke on the newer default checksums
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000 },
    ...(options.accessKeyId &&
      options.secretAccessKey && {
        credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
      }),
  });

  const where = (tenantId: string, key?: string) => {
    const ns = namespaceOf(tenantId);
    if (options.mode === 'prefix') {
      return { Bucket: options.bucket!, Key: key === undefined ? `${ns}/` : `${ns}/${assertBlobKey(key)}` };
    }
    return { Bucket: `${options.bucketPrefix}${ns}`, Key: key === undefined ? '' : assertBlobKey(key) };
  };

  async function* listObjects(tenantId: string) {
    const { Bucket, Key: prefix } = where(tenantId);
    try {
      for await (const page of paginateListObjectsV2({ client }, { Bucket, Prefix: prefix || undefined })) {
        for (const object of page.Contents ?? []) if (object.Key) yield object;
      }
    } catch (err) {
      if ((err as S3Failure).name === 'NoSuchBucket') return;
      translate(err, `listing ${Bucket}/${prefix}`);
    }
  }
  async function* listKeys(tenantId: string) {
    for await (const object of listObjects(tenantId)) yield object.Key!;
  }

  const copyInParts = async (Bucket: string, source: string, Key: string, size: number) => {
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key }));
    try {
      const parts = [];
      for (let start = 0, n = 1; start < size; start += COPY_PART, n++) {
        const end = Math.min(start + COPY_PART, size) - 1;
        const { CopyPartResult } = await client.send(
          new UploadPartCopyCommand({
            Bucket,
            Key,
            UploadId,
            PartNumber: n,
            CopySource: source,
            CopySourceRange: `bytes=${start}-${end}`,
          }),
        );
        parts.push({ PartNumber: n, ETag: CopyPartResult?.ETag });
      }
      await client.send(
        new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }),
      );
    } catch (err) {
      await client
        .send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }))
        .catch((abortErr: unknown) =>
          // its parts keep costing storage until a bucket lifecycle rule or a sweep removes them
          options.logger?.warn(
            { err: abortErr, bucket: Bucket, key: Key },
            'could not abort a multipart copy',
          ),
        );
      throw err;
    }
  };

  return {
    async createNamespace(tenantId) {
      if (options.mode === 'prefix') return;
      const { Bucket } = where(tenantId);
      try {
        await client.send(new CreateBucketCommand({ Bucket }));
      } catch (err) {
        const name = (err as S3Failure).name;
        if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists')
          translate(err, `creating ${Bucket}`);
      }
    },
    async deleteNamespace(tenantId) {
      const { Bucket } = where(tenantId);
      let batch: { Key: string }[] = [];
      const flush = async () => {
        if (batch.length === 0) return;
        await client
          .send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: batch, Quiet: true } }))
          .catch((err) => translate(err, `emptying ${Bucket}`));
        batch = [];
      };
      for await (const Key of listKeys(tenantId)) {
        batch.push({ Key });
        if (batch.length === 1000) await flush();
      }
      await flush();
      if (options.mode === 'prefix') return;
      await client.send(new DeleteBucketCommand({ Bucket })).catch((err) => {
        if ((err as S3Failure).name !== 'NoSuchBucket') translate(err, `deleting ${Bucket}`);
      });
    },
    async put(tenantId, key, body, { contentType }) {
      const target = where(tenantId, key);
      let bytes = 0;
      let bodyError: unknown;
      const counted = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          bytes += chunk.length;
          done(null, chunk);
        },
      });
      body.on('error', (err) => {
        bodyError = err;
        counted.destroy(err);
      });
      body.pipe(counted);
      const upload = new Upload({
        client,
        params: { ...target, Body: counted, ContentType: contentType },
        partSize: PART_SIZE,
        queueSize: QUEUE_SIZE,
        leavePartsOnError: false,
      });
      try {
        await upload.done();
      } catch (err) {
        // the caller's stream failed (size limit, client gone): that is the error to report
        if (bodyError) throw bodyError;
        translate(err, `writing ${target.Bucket}/${target.Key}`);
      }
      return bytes;
    },
    async get(tenantId, key, range) {
      const target = where(tenantId, key);
      try {
        const out = await client.send(
          new GetObjectCommand({ ...target, ...(range && { Range: `bytes=${range.start}-${range.end}` }) }),
        );
        const stream = out.Body as Readable;
        // an engine that fails mid-stream must fail the download, not end it early
        const served = servedRange(out.ContentRange);
        const exact = !range || (served?.start === range.start && served.end === range.end);
        const through = exact
          ? new PassThrough({ highWaterMark: 1024 * 1024 })
          : sliceOf(range, served?.start ?? 0);
        stream.on('error', (err) => through.destroy(err));
        return stream.pipe(through);
      } catch (err) {
        translate(err, `reading ${target.Bucket}/${target.Key}`);
      }
    },
    async delete(tenantId, key) {
      const target = where(tenantId, key);
      await client
        .send(new DeleteObjectCommand(target))
        .catch((err) => translate(err, `deleting ${target.Key}`));
    },
    async copy(tenantId, fromKey, toKey) {
      const from = where(tenantId, fromKey);
      const to = where(tenantId, toKey);
      const source = `${from.Bucket}/${from.Key.split('/').map(encodeURIComponent).join('/')}`;
      try {
        const head = await client.send(new HeadObjectCommand(from));
        if ((head.ContentLength ?? 0) > MAX_SINGLE_COPY) {
          await copyInParts(to.Bucket, source, to.Key, head.ContentLength!);
        } else {
          await client.send(new CopyObjectCommand({ ...to, CopySource: source }));
        }
      } catch (err) {
        translate(err, `copying ${from.Key}`);
      }
    },
    async *keys(tenantId) {
      const { Key: prefix } = where(tenantId);
      for await (const key of listKeys(tenantId)) yield prefix ? key.slice(prefix.length) : key;
    },
    async *listBlobs(tenantId) {
      const { Key: prefix } = where(tenantId);
      for await (const object of listObjects(tenantId)) {
        yield {
          key: prefix ? object.Key!.slice(prefix.length) : object.Key!,
          modifiedAt: object.LastModified ?? new Date(),
        };
      }
    },
    async abortStaleUploads(tenantId, olderThan) {
      const { Bucket, Key: prefix } = where(tenantId);
      let aborted = 0;
      let KeyMarker: string | undefined;
      let UploadIdMarker: string | undefined;
      try {
        for (;;) {
          const page = await client.send(
            new ListMultipartUploadsCommand({
              Bucket,
              Prefix: prefix || undefined,
              KeyMarker,
              UploadIdMarker,
            }),
          );
          for (const upload of page.Uploads ?? []) {
            if (!upload.Key || !upload.UploadId || !upload.Initiated || upload.Initiated >= olderThan)
              continue;
            await client.send(
              new AbortMultipartUploadCommand({ Bucket, Key: upload.Key, UploadId: upload.UploadId }),
            );
            aborted++;
          }
          if (!page.IsTruncated) return aborted;
          KeyMarker = page.NextKeyMarker;
          UploadIdMarker = page.NextUploadIdMarker;
        }
      } catch (err) {
        if ((err as S3Failure).name === 'NoSuchBucket') return aborted;
        // an S3 API without the listing (s3rver): nothing to abort that we can see
        if ((err as S3Failure).name === 'NotImplemented') return aborted;
        translate(err, `listing the open uploads of ${Bucket}`);
      }
    },
    presignGet(tenantId, key, { expiresIn, contentType, contentDisposition }) {
      return getSignedUrl(
        client,
        new GetObjectCommand({
          ...where(tenantId, key),
          ResponseContentType: contentType,
          ResponseContentDisposition: contentDisposition,
        }),
        { expiresIn },
      );
    },
    async ping() {
      const started = performance.now();
      try {
        if (options.mode === 'prefix') await client.send(new HeadBucketCommand({ Bucket: options.bucket! }));
        else await client.send(new ListBucketsCommand({ MaxBuckets: 1 }));
      } catch (err) {
        translate(err, 'object storage health check');
      }
      return performance.now() - started;
    },
    async close() {
      client.destroy();
    },
  };
}
