import { sql } from 'kysely';
import { requireTenant } from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import { PlexicaError } from '../../infra/errors.js';
import type { AuditService } from '../audit/index.js';
import type { BlobStore } from './drivers/index.js';
import { contentTypeFor, sameMediaType } from './media-types.js';
import { normalizePath } from './paths.js';
import type { StorageService } from './service.js';
import { byteLimit, type During, mayRefuse, refusal, usedUpload, type WritePath } from './write-path.js';

/**
 * `StorageService.upload`: the limits are checked before the body is read
 * where the client declared its size, and enforced on the stream otherwise;
 * a signed PUT URL's one use is taken in the commit.
 */
export function createUpload(deps: {
  db: Executor;
  store: BlobStore;
  audit: AuditService;
  write: WritePath;
}): StorageService['upload'] {
  const { db, store, audit, write } = deps;
  const { tenantDb, limitsOf, findRow, tooLarge, overQuota, writeAndCommit } = write;
  return async (ctx, rawPath, body, { contentType, declaredSize, signedUpload, ...rule } = {}) => {
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
    const during: During = async (tx, { file, replaced }) => {
      if (signedUpload) {
        const t = tenantDb(tx.db, tenant);
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
        tx,
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
  };
}
