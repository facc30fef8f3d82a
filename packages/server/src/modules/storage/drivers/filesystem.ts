import { constants, createWriteStream } from 'node:fs';
import { copyFile, mkdir, open, opendir, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { PlexicaError } from '../../../infra/errors.js';
import { assertBlobKey, type BlobStore, namespaceOf } from './blob-store.js';

/**
 * Blobs as files: `{root}/tenant-{id}/{first two hex digits of the key}/{key}`.
 * Paths never reach the disk (the service maps them to random keys), so no
 * user input can name a file outside the tenant's directory.
 */
export function createFilesystemBlobStore(root: string): BlobStore {
  const dirOf = (tenantId: string) => path.join(root, namespaceOf(tenantId));
  const fileOf = (tenantId: string, key: string) =>
    path.join(dirOf(tenantId), assertBlobKey(key).slice(0, 2), key);

  const translate = (err: unknown, key: string): never => {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new PlexicaError('PLX_STORAGE_BLOB_MISSING', { detail: `blob ${key} is missing` });
    // a full disk is the operator's to fix, not a passing outage: its own code and 507 (issue 11 item 7)
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      throw new PlexicaError('PLX_DISK_FULL', {
        detail: `the file store has no space left (${code})`,
        cause: err,
      });
    }
    if (code === 'EIO' || code === 'EMFILE') {
      throw new PlexicaError('PLX_STORAGE_UNAVAILABLE', {
        detail: `filesystem storage failed (${code})`,
        cause: err,
      });
    }
    throw err;
  };

  return {
    async createNamespace(tenantId) {
      await mkdir(dirOf(tenantId), { recursive: true, mode: 0o700 });
    },
    async deleteNamespace(tenantId) {
      await rm(dirOf(tenantId), { recursive: true, force: true });
    },
    async put(tenantId, key, body) {
      const file = fileOf(tenantId, key);
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      // 'wx': a key is written once; a clash would be a bug, never an overwrite
      const out = createWriteStream(file, { flags: 'wx', mode: 0o600, highWaterMark: 1024 * 1024 });
      try {
        await pipeline(body, out);
      } catch (err) {
        await unlink(file).catch(() => {});
        if ((err as NodeJS.ErrnoException).code) translate(err, key);
        throw err;
      }
      return out.bytesWritten;
    },
    async get(tenantId, key, range) {
      // open now, so a concurrent delete after this point cannot break the read;
      // the handle's own stream closes it exactly once
      const handle = await open(fileOf(tenantId, key), 'r').catch((err) => translate(err, key));
      // each read allocates a buffer of highWaterMark bytes: 1 MiB for a small file was most of
      // a signed download's cost (allocation and GC), so read no more at once than there is
      const length = range ? range.end - range.start + 1 : (await handle.stat()).size;
      return handle.createReadStream({
        start: range?.start,
        end: range?.end,
        highWaterMark: Math.max(1, Math.min(length, 1024 * 1024)),
      });
    },
    async delete(tenantId, key) {
      await unlink(fileOf(tenantId, key)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') translate(err, key);
      });
    },
    async copy(tenantId, fromKey, toKey) {
      const to = fileOf(tenantId, toKey);
      await mkdir(path.dirname(to), { recursive: true, mode: 0o700 });
      // FICLONE: a reflink where the filesystem has them, a plain copy elsewhere
      await copyFile(
        fileOf(tenantId, fromKey),
        to,
        constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE,
      ).catch((err) => translate(err, fromKey));
    },
    async *keys(tenantId) {
      const dir = dirOf(tenantId);
      const top = await opendir(dir).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      if (!top) return;
      for await (const fan of top) {
        if (!fan.isDirectory()) continue;
        for await (const entry of await opendir(path.join(dir, fan.name)))
          if (entry.isFile()) yield entry.name;
      }
    },
    async *listBlobs(tenantId) {
      for await (const key of this.keys(tenantId)) {
        // a blob removed between the listing and the stat is not there to sweep
        const info = await stat(fileOf(tenantId, key)).catch(() => undefined);
        if (info) yield { key, modifiedAt: info.mtime };
      }
    },
    async ping() {
      const started = performance.now();
      await mkdir(root, { recursive: true, mode: 0o700 });
      await stat(root);
      return performance.now() - started;
    },
    async close() {},
  };
}
