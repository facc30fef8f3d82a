import type { Logger } from 'pino';
import { type TenantRef, toTenantRef } from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import { tenantScope } from '../../infra/database/tenant-scope.js';
import type { TenantsService } from '../tenants/index.js';
import type { BlobStore } from './drivers/blob-store.js';
import type { StorageTenantTables } from './tables.js';

export interface OrphanSweepResult {
  /** Blobs no file row referenced, older than the grace period, removed. */
  removed: number;
  /** Multipart uploads left open since before the grace period (S3), aborted. */
  aborted: number;
}

/** Tenants listed per page while sweeping. */
const PAGE = 200;
/** Blob keys looked up against `files` per statement. */
const LOOKUP = 500;

/**
 * Removes what a crash mid-upload leaves (issue 11 item 5): blobs no file row
 * references and S3 multipart uploads never completed, once older than
 * `graceMs`. Exact without a record of pending writes because a blob is
 * written under a fresh random key and its row commits right after the last
 * byte: a blob being written has just been modified (the filesystem touches
 * it with every write; S3 shows an object only once complete), and one that
 * commits is referenced. References are read after the listing, so a blob
 * whose row committed meanwhile is seen as referenced. The grace period must
 * exceed the longest upload (default 1 h).
 */
export function createOrphanSweep(deps: {
  db: Executor;
  store: BlobStore;
  tenants: Pick<TenantsService, 'list'>;
  graceMs: number;
  logger: Pick<Logger, 'info' | 'warn'>;
}): (signal?: AbortSignal) => Promise<OrphanSweepResult> {
  const { db, store, graceMs } = deps;

  const sweepTenant = async (tenant: TenantRef, olderThan: Date, result: OrphanSweepResult) => {
    const old: string[] = [];
    for await (const blob of store.listBlobs(tenant.id)) if (blob.modifiedAt < olderThan) old.push(blob.key);
    for (let i = 0; i < old.length; i += LOOKUP) {
      const keys = old.slice(i, i + LOOKUP);
      const rows = await tenantScope<StorageTenantTables>(db, tenant)
        .selectFrom('files')
        .select('blob_key')
        .where('blob_key', 'in', keys)
        .execute();
      const referenced = new Set(rows.map((r) => r.blob_key));
      for (const key of keys) {
        if (referenced.has(key)) continue;
        await store.delete(tenant.id, key);
        result.removed++;
      }
    }
    if (store.abortStaleUploads) result.aborted += await store.abortStaleUploads(tenant.id, olderThan);
  };

  return async (signal) => {
    const olderThan = new Date(Date.now() - graceMs);
    const result: OrphanSweepResult = { removed: 0, aborted: 0 };
    // deleted tenants keep their blobs until the purge removes the whole namespace
    for (const status of ['active', 'suspended'] as const) {
      for (let offset = 0; ; offset += PAGE) {
        const page = await deps.tenants.list({ limit: PAGE, offset, status });
        for (const tenant of page.items) {
          if (signal?.aborted) return result;
          await sweepTenant(toTenantRef(tenant), olderThan, result);
        }
        if (page.items.length < PAGE) break;
      }
    }
    if (result.removed > 0 || result.aborted > 0)
      deps.logger.info(result, 'removed blobs and uploads a crash left behind');
    return result;
  };
}
