import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { sql } from 'kysely';
import type { Logger } from 'pino';
import { type RequestContext, requireTenant } from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import { inTransaction } from '../../infra/database/transaction.js';
import { isPlexicaError, PlexicaError } from '../../infra/errors.js';
import type { TenantLifecycleHook } from '../../module.js';
import type { AuditService } from '../audit/index.js';
import type { BlobStore, ByteRange } from './drivers/index.js';
import { checkMediaType, contentDisposition } from './media-types.js';
import { normalizePath, normalizePrefix, prefixUpperBound } from './paths.js';
import { rangeOf } from './range.js';
import type { SignedUrlGrant, UrlSigner } from './signing.js';
import { createUpload } from './upload.js';
import { createWritePath, type During, mayRefuse, notFound, refusal, toFile } from './write-path.js';

export interface FileInfo {
  path: string;
  size: number;
  contentType: string;
  /** Strong validator: changes with every write of the path. */
  etag: string;
  createdAt: string;
  updatedAt: string;
}

export interface StorageUsage {
  bytes: number;
  objects: number;
  /** null: unlimited */
  quotaBytes: number | null;
  maxFileSize: number;
}

export type ReadResult =
  | { notModified: true; file: FileInfo }
  | { notModified: false; file: FileInfo; body: Readable | undefined; range: ByteRange | undefined };

export interface StorageLimits {
  maxFileSize: number;
  /** 0 = unlimited */
  quotaBytes: number;
  /** Longest lifetime of a signed URL, in seconds. */
  signedUrlMaxSeconds: number;
}

/**
 * Whether a write may replace an existing file. Replacing destroys the old
 * contents, so it needs `storage:file:delete` as deleting does; the routes
 * pass what the caller holds, and the check runs in the transaction that
 * would replace the file. Internal callers may omit it (allowed).
 */
export interface ReplaceRule {
  /** false: a file at the target is refused with PLX_STORAGE_FILE_EXISTS (the caller asked so). */
  overwrite?: boolean;
  /** false: a file at the target is refused with PLX_PERMISSION_DENIED (the caller may not). */
  mayReplace?: boolean;
}

/** The tenant's files (seed 000 §7 `StorageService`), streamed end to end. */
export interface StorageService {
  /**
   * Streams `body` to `path`. An existing file is replaced only when the new
   * one is complete and within the limits, and only as `ReplaceRule` allows.
   * @param declaredSize Content-Length when the client sent one: refused early when too large
   * @param signedUpload the one-use id of the signed PUT URL this upload came through
   */
  upload(
    ctx: RequestContext,
    path: string,
    body: Readable,
    options?: ReplaceRule & {
      contentType?: string;
      declaredSize?: number;
      signedUpload?: { id: string; expires: number; contentType: string | undefined };
    },
  ): Promise<FileInfo>;
  head(ctx: RequestContext, path: string): Promise<FileInfo>;
  /**
   * Opens the file, or the one range a `Range` header asks for; honours
   * `If-None-Match`. `open: false` (HEAD) answers the same without opening it.
   * @param version the blob a signed URL was signed for: any other is PLX_STORAGE_SIGNED_URL_STALE
   */
  read(
    ctx: RequestContext,
    path: string,
    options?: { range?: string; ifNoneMatch?: string; open?: boolean; version?: string },
  ): Promise<ReadResult>;
  delete(ctx: RequestContext, path: string): Promise<void>;
  list(
    ctx: RequestContext,
    query: { prefix?: string; limit?: number; cursor?: string },
  ): Promise<{ items: FileInfo[]; nextCursor: string | null }>;
  copy(ctx: RequestContext, from: string, to: string, options?: ReplaceRule): Promise<FileInfo>;
  /** Vacates `from`: the route requires delete for it. */
  move(ctx: RequestContext, from: string, to: string, options?: ReplaceRule): Promise<FileInfo>;
  usage(ctx: RequestContext): Promise<StorageUsage>;
  /**
   * A URL that works without a credential until it expires, recorded in the
   * audit log. GET: bound to the file's current version (blob): the engine's
   * own presigned URL of that blob where it has one (S3), else a Plexica URL
   * that serves that version or nothing. PUT: always a Plexica URL, so size
   * limits, quota and metadata hold for signed uploads too; good for one
   * upload, of `contentType` when given, replacing a file only if `overwrite`.
   * @returns `url` absolute for presigned engine URLs, else a path on this server
   */
  signedUrl(
    ctx: RequestContext,
    path: string,
    options: { method: 'GET' | 'PUT'; expiresIn: number; contentType?: string; overwrite?: boolean },
  ): Promise<{ url: string; method: 'GET' | 'PUT'; expiresAt: string }>;
  /** Checks a Plexica signed URL. @throws PLX_STORAGE_SIGNATURE_INVALID / _EXPIRED */
  verifySignedUrl(grant: SignedUrlGrant, signature: string): void;
  /** Creates a tenant's namespace with it and removes it at purge. */
  lifecycle: TenantLifecycleHook;
  /** How a file is served: `inline` only for types a browser cannot run. */
  contentDisposition(file: FileInfo): string;
}

export function createStorageService(options: {
  db: Executor;
  store: BlobStore;
  signer: UrlSigner;
  limits: StorageLimits;
  audit: AuditService;
  logger: Logger;
}): StorageService {
  const { db, store, signer, limits, audit, logger } = options;
  const write = createWritePath({ db, store, limits, logger });
  const { tenantDb, limitsOf, ensureNamespace, dropBlob, findRow, writeAndCommit } = write;

  const head = async (ctx: RequestContext, path: string) => {
    const tenant = requireTenant(ctx);
    const normalized = normalizePath(path);
    const row = await findRow(tenant, normalized);
    if (!row) throw notFound(normalized);
    return { tenant, row, file: toFile(row) };
  };

  return {
    upload: createUpload({ db, store, audit, write }),

    head: async (ctx, path) => (await head(ctx, path)).file,

    async read(ctx, path, { range: rangeHeader, ifNoneMatch, open = true, version } = {}) {
      // a concurrent overwrite may delete the blob between the lookup and the open: look again once
      for (let attempt = 0; ; attempt++) {
        const { tenant, row, file } = await head(ctx, path);
        if (version !== undefined && row.blob_key !== version) {
          throw new PlexicaError('PLX_STORAGE_SIGNED_URL_STALE', {
            detail: `the file at "${file.path}" was replaced after the URL was signed`,
          });
        }
        if (ifNoneMatch?.split(',').some((tag) => tag.trim() === file.etag || tag.trim() === '*')) {
          return { notModified: true, file };
        }
        const range = rangeOf(rangeHeader, file.size);
        if (!open) return { notModified: false, file, body: undefined, range };
        try {
          const body = await store.get(tenant.id, row.blob_key, range);
          return { notModified: false, file, body, range };
        } catch (err) {
          if (attempt === 0 && isPlexicaError(err) && err.code === 'PLX_STORAGE_BLOB_MISSING') continue;
          throw err;
        }
      }
    },

    async delete(ctx, rawPath) {
      const tenant = requireTenant(ctx);
      const path = normalizePath(rawPath);
      const removed = await inTransaction(db, async (tx) => {
        const t = tenantDb(tx.db, tenant);
        const row = await t.deleteFrom('files').where('path', '=', path).returningAll().executeTakeFirst();
        if (!row) throw notFound(path);
        await t
          .updateTable('storage_usage')
          .set({ bytes: sql<number>`bytes - ${Number(row.size)}`, objects: sql<number>`objects - 1` })
          .execute();
        await audit.record(
          ctx,
          {
            action: 'storage.file.deleted',
            targetType: 'file',
            targetId: path,
            data: { size: Number(row.size) },
          },
          tx,
        );
        return row;
      });
      await dropBlob(tenant, removed.blob_key);
    },

    async list(ctx, { prefix: rawPrefix = '', limit = 100, cursor }) {
      const tenant = requireTenant(ctx);
      const prefix = normalizePrefix(rawPrefix);
      let after: string | undefined;
      if (cursor) {
        after = Buffer.from(cursor, 'base64url').toString('utf8');
        if (Buffer.from(after, 'utf8').toString('base64url') !== cursor || !after.startsWith(prefix)) {
          throw new PlexicaError('PLX_VALIDATION', {
            detail: 'cursor is not one this list returned',
            errors: [{ field: 'querystring.cursor', message: 'is not a cursor of this listing' }],
          });
        }
      }
      let query = tenantDb(db, tenant)
        .selectFrom('files')
        .selectAll()
        .orderBy('path')
        .limit(limit + 1);
      if (prefix) {
        query = query.where('path', '>=', prefix);
        const upper = prefixUpperBound(prefix);
        if (upper) query = query.where('path', '<', upper);
      }
      if (after !== undefined) query = query.where('path', '>', after);
      const rows = await query.execute();
      const items = rows.slice(0, limit).map(toFile);
      const nextCursor =
        rows.length > limit ? Buffer.from(items.at(-1)!.path, 'utf8').toString('base64url') : null;
      return { items, nextCursor };
    },

    async copy(ctx, from, to, rule = {}) {
      const { tenant, row } = await head(ctx, from);
      const target = normalizePath(to, 'to');
      const early = mayRefuse(rule) && (await findRow(tenant, target)) && refusal(target, rule);
      if (early) throw early;
      const during: During = (tx, { file, replaced }) =>
        audit.record(
          ctx,
          {
            action: 'storage.file.copied',
            targetType: 'file',
            targetId: file.path,
            data: { from: row.path, size: file.size, replaced },
          },
          tx,
        );
      return writeAndCommit(tenant, target, row.content_type, rule, during, async (key) => {
        await store.copy(tenant.id, row.blob_key, key);
        return Number(row.size);
      });
    },

    async move(ctx, from, to, rule = {}) {
      const tenant = requireTenant(ctx);
      const source = normalizePath(from, 'from');
      const target = normalizePath(to, 'to');
      const { file, replaced } = await inTransaction(db, async (tx) => {
        const t = tenantDb(tx.db, tenant);
        await t.selectFrom('storage_usage').select('id').forUpdate().execute();
        const row = await t.selectFrom('files').selectAll().where('path', '=', source).executeTakeFirst();
        if (!row) throw notFound(source);
        if (source === target) return { file: toFile(row), replaced: undefined };
        const existing = await t
          .selectFrom('files')
          .selectAll()
          .where('path', '=', target)
          .executeTakeFirst();
        if (existing) {
          const refused = refusal(target, rule);
          if (refused) throw refused;
          await t.deleteFrom('files').where('path', '=', target).execute();
          await t
            .updateTable('storage_usage')
            .set({ bytes: sql<number>`bytes - ${Number(existing.size)}`, objects: sql<number>`objects - 1` })
            .execute();
        }
        const moved = await t
          .updateTable('files')
          .set({ path: target, updated_at: sql<Date>`now()` })
          .where('path', '=', source)
          .returningAll()
          .executeTakeFirstOrThrow();
        await audit.record(
          ctx,
          {
            action: 'storage.file.moved',
            targetType: 'file',
            targetId: target,
            data: { from: source, replaced: existing !== undefined },
          },
          tx,
        );
        return { file: toFile(moved), replaced: existing?.blob_key };
      });
      if (replaced) await dropBlob(tenant, replaced);
      return file;
    },

    async usage(ctx) {
      const tenant = requireTenant(ctx);
      const row = await tenantDb(db, tenant)
        .selectFrom('storage_usage')
        .selectAll()
        .executeTakeFirstOrThrow();
      const { maxFileSize, quotaBytes } = limitsOf(tenant);
      return {
        bytes: Number(row.bytes),
        objects: Number(row.objects),
        quotaBytes: quotaBytes > 0 ? quotaBytes : null,
        maxFileSize,
      };
    },

    async signedUrl(ctx, rawPath, { method, expiresIn, contentType, overwrite = true }) {
      const tenant = requireTenant(ctx);
      const path = normalizePath(rawPath);
      if (!Number.isInteger(expiresIn) || expiresIn < 1 || expiresIn > limits.signedUrlMaxSeconds) {
        throw new PlexicaError('PLX_VALIDATION', {
          detail: `expiresIn must be from 1 to ${limits.signedUrlMaxSeconds} seconds`,
          errors: [
            { field: 'querystring.expiresIn', message: `must be from 1 to ${limits.signedUrlMaxSeconds}` },
          ],
        });
      }
      const expires = Math.floor(Date.now() / 1000) + expiresIn;
      const expiresAt = new Date(expires * 1000).toISOString();
      let url: string;
      let data: Record<string, unknown>;
      if (method === 'GET') {
        if (contentType !== undefined) {
          throw new PlexicaError('PLX_VALIDATION', {
            detail: 'contentType fixes what a signed upload carries; a download has the file’s own',
            errors: [{ field: 'querystring.contentType', message: 'is only for method=PUT' }],
          });
        }
        const { row, file } = await head(ctx, path);
        // S3's URL names the blob, which every write replaces: it serves this version or NoSuchKey
        url = store.presignGet
          ? await store.presignGet(tenant.id, row.blob_key, {
              expiresIn,
              contentType: file.contentType,
              contentDisposition: contentDisposition(file),
            })
          : signer.url({ method, tenantId: tenant.id, path, expires, version: row.blob_key });
        data = { method, expiresAt, etag: file.etag };
      } else {
        const type =
          contentType === undefined
            ? undefined
            : checkMediaType(contentType, 'querystring.contentType', 'PLX_VALIDATION');
        const id = randomUUID();
        url = signer.url({ method, tenantId: tenant.id, path, expires, id, contentType: type, overwrite });
        data = { method, expiresAt, signedUrlId: id, contentType: type ?? null, overwrite };
      }
      await audit.record(ctx, {
        action: 'storage.signed_url.issued',
        targetType: 'file',
        targetId: path,
        data,
      });
      return { url, method, expiresAt };
    },

    verifySignedUrl: (grant, signature) => signer.verify(grant, signature),

    lifecycle: {
      provision: (tenant) => ensureNamespace(tenant.id),
      async purge(tenant) {
        await store.deleteNamespace(tenant.id);
        write.forgetNamespace(tenant.id);
      },
    },

    contentDisposition,
  };
}
