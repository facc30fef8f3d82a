import { randomUUID } from 'node:crypto';
import { Transform } from 'node:stream';
import { type Kysely, type Selectable, sql } from 'kysely';
import type { Logger } from 'pino';
import type { TenantRef } from '../../context.js';
import { type Executor, preparedPerSchema } from '../../infra/database/index.js';
import { tenantScope } from '../../infra/database/tenant-scope.js';
import { inTransaction, type Transaction } from '../../infra/database/transaction.js';
import { PlexicaError } from '../../infra/errors.js';
import type { BlobStore } from './drivers/index.js';
import type { FileInfo, ReplaceRule, StorageLimits } from './service.js';
import type { FilesTable, StorageTenantTables } from './tables.js';

/**
 * The write path of the storage module: a new blob is written first, then one
 * transaction points the path at it within the quota and the replace rule, and
 * whichever blob lost is removed (a failed or refused write never destroys the
 * old file).
 */

export const toFile = (
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

export const notFound = (path: string) =>
  new PlexicaError('PLX_STORAGE_FILE_NOT_FOUND', { detail: `no file at "${path}"` });
export const exists = (path: string) =>
  new PlexicaError('PLX_STORAGE_FILE_EXISTS', {
    detail: `a file exists at "${path}" and overwrite is false`,
  });
export const replaceDenied = (path: string) =>
  new PlexicaError('PLX_PERMISSION_DENIED', {
    detail: `a file exists at "${path}"; replacing it needs storage:file:delete`,
  });
/** The refusal `rule` makes for a file that exists at `path`, if any. */
export const refusal = (path: string, { overwrite = true, mayReplace = true }: ReplaceRule) =>
  !overwrite ? exists(path) : !mayReplace ? replaceDenied(path) : undefined;
/** Whether `rule` can refuse at all: only then is the target looked up before writing. */
export const mayRefuse = (rule: ReplaceRule) => rule.overwrite === false || rule.mayReplace === false;
export const usedUpload = () =>
  new PlexicaError('PLX_STORAGE_SIGNED_URL_USED', { detail: 'sign a new URL for another upload' });

/** Fails the stream once more than `limit` bytes went through. */
export function byteLimit(limit: number, tooMuch: () => PlexicaError): Transform {
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
export type During = (tx: Transaction, change: { file: FileInfo; replaced: boolean }) => Promise<void>;

export interface WritePath {
  tenantDb(executor: Executor, tenant: TenantRef): Kysely<StorageTenantTables>;
  limitsOf(tenant: TenantRef): { maxFileSize: number; quotaBytes: number };
  ensureNamespace(tenantId: string): Promise<void>;
  forgetNamespace(tenantId: string): void;
  dropBlob(tenant: TenantRef, key: string): Promise<void>;
  findRow(tenant: TenantRef, path: string, executor?: Executor): Promise<Selectable<FilesTable> | undefined>;
  tooLarge(max: number): PlexicaError;
  overQuota(quota: number, used: number): PlexicaError;
  /** Writes a new blob with `write`, commits it at `path`, and cleans up whichever blob lost. */
  writeAndCommit(
    tenant: TenantRef,
    path: string,
    contentType: string,
    rule: ReplaceRule,
    during: During,
    write: (key: string) => Promise<number>,
  ): Promise<FileInfo>;
}

export function createWritePath(options: {
  db: Executor;
  store: BlobStore;
  limits: StorageLimits;
  logger: Logger;
}): WritePath {
  const { db, store, limits, logger } = options;
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

  // every read, download and signed URL looks its file up: planned once per tenant schema
  const fileByPath = preparedPerSchema(
    'storage.file_by_path',
    (schema) => (path: string) =>
      tenantScope<StorageTenantTables>(db, { schema })
        .selectFrom('files')
        .selectAll()
        .where('path', '=', path),
  );
  const findRow = async (tenant: TenantRef, path: string, executor: Executor = db) =>
    (await fileByPath(tenant.schema).execute(executor, path))[0];

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
    return inTransaction(db, async (tx) => {
      const t = tenantDb(tx.db, tenant);
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
      await during(tx, { file, replaced: existing !== undefined });
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

  return {
    tenantDb,
    limitsOf,
    ensureNamespace,
    forgetNamespace: (tenantId) => {
      namespaces.delete(tenantId);
    },
    dropBlob,
    findRow,
    tooLarge,
    overQuota,
    writeAndCommit,
  };
}
