import { randomUUID } from 'node:crypto';
import { type Readable, Transform } from 'node:stream';
import { sql } from 'kysely';
import mime from 'mime-types';
import type { Logger } from 'pino';
import { type RequestContext, requireTenant, type TenantRef } from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import { tenantScope } from '../../infra/database/tenant-scope.js';
import { isPlexicaError, PlexicaError } from '../../infra/errors.js';
import type { TenantLifecycleHook } from '../../module.js';
import type { AuditService } from '../audit/index.js';
import type { BlobStore, ByteRange } from './drivers/blob-store.js';
import { baseName, normalizePath, normalizePrefix, prefixUpperBound } from './paths.js';
import { rangeOf } from './range.js';
import type { SignedUrlGrant, UrlSigner } from './signing.js';
import type { FilesTable, StorageTenantTables } from './tables.js';

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

const CONTENT_TYPE =
  /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+(\s*;\s*[a-z0-9!#$&^_.+-]+=("[^"\\\r\n]*"|[a-z0-9!#$&^_.+-]+))*$/i;
const checkMediaType = (
  given: string,
  field: string,
  code: 'PLX_STORAGE_UPLOAD_INVALID' | 'PLX_VALIDATION',
): string => {
  if (given.length > 255 || !CONTENT_TYPE.test(given)) {
    throw new PlexicaError(code, {
      detail: `"${given.slice(0, 100)}" is not a media type`,
      errors: [{ field, message: 'must be a media type like image/png' }],
    });
  }
  return given;
};
/** Media types compare without case and without the spaces around parameters. */
const sameMediaType = (a: string | undefined, b: string) =>
  a !== undefined && a.toLowerCase().replace(/\s+/g, '') === b.toLowerCase().replace(/\s+/g, '');
const INLINE_TYPES = /^(image\/(png|jpeg|gif|webp|avif)|video\/|audio\/|application\/pdf$|text\/plain)/;

const toFile = (
  row: Pick<FilesTable, 'path' | 'blob_key' | 'content_type'> & {
    size: string | number;
    created_at: Date;
    updated_at: Date;
  },
): FileInfo => ({
  path: row.path,
  size: Number(row.size),
  contentType: row.content_type,
  etag: `"${row.blob_key}"`,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
});

const notFound = (path: string) =>
  new PlexicaError('PLX_STORAGE_FILE_NOT_FOUND', { detail: `no file at "${path}"` });
const exists = (path: string) =>
  new PlexicaError('PLX_STORAGE_FILE_EXISTS', {
    detail: `a file exists at "${path}" and overwrite is false`,
  });
const replaceDenied = (path: string) =>
  new PlexicaError('PLX_PERMISSION_DENIED', {
    detail: `a file exists at "${path}"; replacing it needs storage:file:delete`,
  });
/** The refusal `rule` makes for a file that exists at `path`, if any. */
const refusal = (path: string, { overwrite = true, mayReplace = true }: ReplaceRule) =>
  !overwrite ? exists(path) : !mayReplace ? replaceDenied(path) : undefined;
/** Whether `rule` can refuse at all: only then is the target looked up before writing. */
const mayRefuse = (rule: ReplaceRule) => rule.overwrite === false || rule.mayReplace === false;
const usedUpload = () =>
  new PlexicaError('PLX_STORAGE_SIGNED_URL_USED', { detail: 'sign a new URL for another upload' });

/** Fails the stream once more than `limit` bytes went through. */
function byteLimit(limit: number, tooMuch: () => PlexicaError): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > limit) done(tooMuch());
      else done(null, chunk);
    },
  });
}

/** A change made in a commit's transaction, for the audit record written in the same one. */
type During = (trx: Executor, change: { file: FileInfo; replaced: boolean }) => Promise<void>;

export function createStorageService(options: {
  db: Executor;
  store: BlobStore;
  signer: UrlSigner;
  limits: StorageLimits;
  audit: AuditService;
  logger: Logger;
}): StorageService {
  const { db, store, signer, limits, audit, logger } = options;
  const tenantDb = (executor: Executor, tenant: TenantRef) =>
    tenantScope<StorageTenantTables>(executor, tenant);
  const limitsOf = (tenant: TenantRef) => ({
    maxFileSize: tenant.settings.storageMaxFileSize ?? limits.maxFileSize,
    quotaBytes: tenant.settings.storageQuotaBytes ?? limits.quotaBytes,
  });
  // tenants created before storage existed get their namespace on first write
  const namespaces = new Set<string>();
  const ensureNamespace = async (tenantId: string) => {
    if (namespaces.has(tenantId)) return;
    await store.createNamespace(tenantId);
    namespaces.add(tenantId);
  };
  const dropBlob = (tenant: TenantRef, key: string) =>
    store.delete(tenant.id, key).catch((err: unknown) =>
      // an orphaned blob costs space, never correctness: the row is what counts
      logger.warn({ err, tenantId: tenant.id, key }, 'could not delete a replaced blob'),
    );

  const findRow = (tenant: TenantRef, path: string, executor: Executor = db) =>
    tenantDb(executor, tenant).selectFrom('files').selectAll().where('path', '=', path).executeTakeFirst();

  const tooLarge = (max: number) =>
    new PlexicaError('PLX_STORAGE_FILE_TOO_LARGE', {
      detail: `files may have at most ${max} bytes in this tenant`,
      extra: { maxFileSize: max },
    });
  const overQuota = (quota: number, used: number) =>
    new PlexicaError('PLX_STORAGE_QUOTA_EXCEEDED', {
      detail: `the tenant's storage quota of ${quota} bytes would be exceeded (${used} in use)`,
      extra: { quotaBytes: quota, usedBytes: used },
    });

  /**
   * Points `path` at a blob that is already written, within the quota and the
   * replace rule, in one transaction that serialises on the tenant's usage
   * row; `during` runs in it last (the audit record). @returns the file and the blob it replaced
   */
  const commit = async (
    tenant: TenantRef,
    path: string,
    blob: { key: string; size: number; contentType: string },
    rule: ReplaceRule,
    during: During,
  ) => {
    const { quotaBytes } = limitsOf(tenant);
    return db.transaction().execute(async (trx) => {
      const t = tenantDb(trx, tenant);
      const usage = await t.selectFrom('storage_usage').selectAll().forUpdate().executeTakeFirstOrThrow();
      const existing = await t.selectFrom('files').selectAll().where('path', '=', path).executeTakeFirst();
      const refused = existing && refusal(path, rule);
      if (refused) throw refused;
      const bytes = Number(usage.bytes) - Number(existing?.size ?? 0) + blob.size;
      if (quotaBytes > 0 && bytes > quotaBytes && blob.size > Number(existing?.size ?? 0)) {
        throw overQuota(quotaBytes, Number(usage.bytes));
      }
      const row = await t
        .insertInto('files')
        .values({ path, blob_key: blob.key, size: blob.size, content_type: blob.contentType })
        .onConflict((oc) =>
          oc.column('path').doUpdateSet({
            blob_key: blob.key,
            size: blob.size,
            content_type: blob.contentType,
            updated_at: sql<Date>`now()`,
          }),
        )
        .returningAll()
        .executeTakeFirstOrThrow();
      await t
        .updateTable('storage_usage')
        .set({
          bytes: sql<number>`bytes + ${bytes - Number(usage.bytes)}`,
          objects: sql<number>`objects + ${existing ? 0 : 1}`,
        })
        .execute();
      const file = toFile(row);
      await during(trx, { file, replaced: existing !== undefined });
      return { file, replaced: existing?.blob_key };
    });
  };

  /** Writes a new blob with `write`, commits it at `path`, and cleans up whichever blob lost. */
  const writeAndCommit = async (
    tenant: TenantRef,
    path: string,
    contentType: string,
    rule: ReplaceRule,
    during: During,
    write: (key: string) => Promise<number>,
  ) => {
    const key = randomUUID();
    let size: number;
    try {
      await ensureNamespace(tenant.id);
      size = await write(key);
    } catch (err) {
      // a partial blob nothing points at: removed now, or logged (an orphan costs space only)
      await dropBlob(tenant, key);
      throw err;
    }
    let result: Awaited<ReturnType<typeof commit>>;
    try {
      result = await commit(tenant, path, { key, size, contentType }, rule, during);
    } catch (err) {
      await dropBlob(tenant, key);
      throw err;
    }
    if (result.replaced) await dropBlob(tenant, result.replaced);
    return result.file;
  };

  const contentTypeFor = (path: string, given: string | undefined): string => {
    if (given !== undefined && given !== '' && given !== 'application/octet-stream') {
      return checkMediaType(given, 'contentType', 'PLX_STORAGE_UPLOAD_INVALID');
    }
    return mime.lookup(path) || 'application/octet-stream';
  };

  const head = async (ctx: RequestContext, path: string) => {
    const tenant = requireTenant(ctx);
    const normalized = normalizePath(path);
    const row = await findRow(tenant, normalized);
    if (!row) throw notFound(normalized);
    return { tenant, row, file: toFile(row) };
  };

  const contentDisposition = (file: FileInfo) => {
    const name = baseName(file.path);
    const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
    const kind = INLINE_TYPES.test(file.contentType) ? 'inline' : 'attachment';
    return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
  };

  return {
    async upload(ctx, rawPath, body, { contentType, declaredSize, signedUpload, ...rule } = {}) {
      const tenant = requireTenant(ctx);
      const path = normalizePath(rawPath);
      const fixed = signedUpload?.contentType;
      if (fixed !== undefined && !sameMediaType(contentType, fixed)) {
        throw new PlexicaError('PLX_STORAGE_CONTENT_TYPE_MISMATCH', {
          detail: `the URL was signed for uploads of ${fixed}`,
          extra: { expected: fixed },
        });
      }
      const type = fixed ?? contentTypeFor(path, contentType);
      const { maxFileSize, quotaBytes } = limitsOf(tenant);
      if (declaredSize !== undefined && declaredSize > maxFileSize) throw tooLarge(maxFileSize);
      let allowance = maxFileSize;
      let quotaError: (() => PlexicaError) | undefined;
      if (quotaBytes > 0) {
        const t = tenantDb(db, tenant);
        const [usage, existing] = await Promise.all([
          t.selectFrom('storage_usage').select('bytes').executeTakeFirstOrThrow(),
          t.selectFrom('files').select('size').where('path', '=', path).executeTakeFirst(),
        ]);
        const left = quotaBytes - Number(usage.bytes) + Number(existing?.size ?? 0);
        if (left < allowance) {
          allowance = Math.max(0, left);
          quotaError = () => overQuota(quotaBytes, Number(usage.bytes));
        }
        if (declaredSize !== undefined && declaredSize > allowance)
          throw (quotaError ?? (() => tooLarge(maxFileSize)))();
      }
      // refused before the body is read; the commit checks again, in its transaction
      const early = mayRefuse(rule) && (await findRow(tenant, path)) && refusal(path, rule);
      if (early) throw early;
      if (signedUpload) {
        const used = await tenantDb(db, tenant)
          .selectFrom('signed_uploads')
          .select('id')
          .where('id', '=', signedUpload.id)
          .executeTakeFirst();
        if (used) throw usedUpload();
      }
      const during: During = async (trx, { file, replaced }) => {
        if (signedUpload) {
          const t = tenantDb(trx, tenant);
          // the URL's one use is taken in the commit: a failed upload leaves it usable, and of
          // two racing uploads through it exactly one commits
          const claimed = await t
            .insertInto('signed_uploads')
            .values({ id: signedUpload.id, expires_at: new Date(signedUpload.expires * 1000) })
            .onConflict((oc) => oc.column('id').doNothing())
            .returning('id')
            .executeTakeFirst();
          if (!claimed) throw usedUpload();
          await t.deleteFrom('signed_uploads').where('expires_at', '<', sql<Date>`now()`).execute();
        }
        await audit.record(
          ctx,
          {
            action: 'storage.file.uploaded',
            targetType: 'file',
            targetId: file.path,
            data: {
              size: file.size,
              contentType: file.contentType,
              replaced,
              ...(signedUpload && { signedUrlId: signedUpload.id }),
            },
          },
          trx,
        );
      };
      return writeAndCommit(tenant, path, type, rule, during, async (key) => {
        const limited = byteLimit(allowance, quotaError ?? (() => tooLarge(maxFileSize)));
        body.on('error', (err) => limited.destroy(err));
        // the limit can trip before the driver attaches its own listeners (it may
        // await a mkdir first); the driver still sees the error on the destroyed stream
        limited.on('error', () => {});
        const written = await store.put(tenant.id, key, body.pipe(limited), { contentType: type });
        if (declaredSize !== undefined && written !== declaredSize) {
          throw new PlexicaError('PLX_STORAGE_UPLOAD_INCOMPLETE', {
            detail: `received ${written} of ${declaredSize} bytes`,
          });
        }
        return written;
      });
    },

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
      const removed = await db.transaction().execute(async (trx) => {
        const t = tenantDb(trx, tenant);
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
          trx,
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
      const during: During = (trx, { file, replaced }) =>
        audit.record(
          ctx,
          {
            action: 'storage.file.copied',
            targetType: 'file',
            targetId: file.path,
            data: { from: row.path, size: file.size, replaced },
          },
          trx,
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
      const { file, replaced } = await db.transaction().execute(async (trx) => {
        const t = tenantDb(trx, tenant);
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
          trx,
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
      async provision(tenant) {
        await store.createNamespace(tenant.id);
        namespaces.add(tenant.id);
      },
      async purge(tenant) {
        await store.deleteNamespace(tenant.id);
        namespaces.delete(tenant.id);
      },
    },

    contentDisposition,
  };
}
