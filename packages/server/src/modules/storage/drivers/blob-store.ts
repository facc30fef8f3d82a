import type { Readable } from 'node:stream';
import { UUID } from '../../../infra/uuid.js';

/** An inclusive byte range, as `Range: bytes=start-end` asks for it. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Where file contents live. A blob store knows nothing of paths, quotas or
 * metadata: it keeps immutable blobs under random keys in one namespace per
 * tenant (a directory `tenant-{id}`, a bucket `tenant-{id}`, or a prefix in a
 * shared bucket). The storage service maps paths to blobs in the tenant's
 * schema, so an overwrite writes a new blob and switches the row in one
 * transaction: a failed or over-quota upload never destroys the old file.
 *
 * Errors come out as PlexicaErrors: PLX_STORAGE_BLOB_MISSING for a key that
 * is not there, PLX_STORAGE_UNAVAILABLE when the engine fails after retries.
 */
export interface BlobStore {
  /** Creates the tenant's namespace; idempotent. */
  createNamespace(tenantId: string): Promise<void>;
  /** Removes every blob of the tenant and the namespace itself; idempotent. */
  deleteNamespace(tenantId: string): Promise<void>;
  /**
   * Streams `body` into a new blob. If the stream errors the blob is not left
   * behind and the stream's error is what rejects. @returns bytes written
   */
  put(tenantId: string, key: string, body: Readable, options: { contentType: string }): Promise<number>;
  /** Opens a blob for reading; the whole blob, or the inclusive `range`. */
  get(tenantId: string, key: string, range?: ByteRange): Promise<Readable>;
  /** Removes a blob; a missing one is not an error. */
  delete(tenantId: string, key: string): Promise<void>;
  /** Server-side copy within the tenant's namespace. */
  copy(tenantId: string, fromKey: string, toKey: string): Promise<void>;
  /** Every blob key of the tenant (for purges, audits and the contract suite). */
  keys(tenantId: string): AsyncIterable<string>;
  /** Every blob with the time it was last written: what the orphan sweep weighs against its grace period. */
  listBlobs(tenantId: string): AsyncIterable<{ key: string; modifiedAt: Date }>;
  /**
   * Optional capability: aborts the engine's multipart uploads of the tenant
   * opened before `olderThan` (a crash mid-upload leaves them, billed and
   * invisible). An engine without it (the filesystem) has nothing open.
   * @returns how many were aborted
   */
  abortStaleUploads?(tenantId: string, olderThan: Date): Promise<number>;
  /**
   * A URL the client fetches from the engine itself, when the engine can sign
   * one (S3 presigned GET); undefined means Plexica serves the download.
   */
  presignGet?(
    tenantId: string,
    key: string,
    options: { expiresIn: number; contentType: string; contentDisposition: string },
  ): Promise<string>;
  /** A cheap round trip, for /health. @returns latency in ms */
  ping(): Promise<number>;
  close(): Promise<void>;
}

/** Blob keys are UUIDs the service makes; anything else is refused before it reaches a driver. */
export const BLOB_KEY = UUID;
export const TENANT_ID = UUID;

/** `tenant-{id}`, the namespace name of seed 000 FR-002. */
export function namespaceOf(tenantId: string): string {
  if (!TENANT_ID.test(tenantId)) throw new TypeError(`not a tenant id: ${JSON.stringify(tenantId)}`);
  return `tenant-${tenantId}`;
}

export function assertBlobKey(key: string): string {
  if (!BLOB_KEY.test(key)) throw new TypeError(`not a blob key: ${JSON.stringify(key)}`);
  return key;
}
