import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORAGE_ENGINES } from '../../../test/engines.js';
import { createTestApp, type TestApp } from '../../../test/harness.js';
import { type S3Fixture, startS3rver } from '../../../test/s3-fixture.js';
import { createOrphanSweep } from './orphan-sweep.js';

const GRACE_MS = 1500;
const keysOf = async (t: TestApp, tenantId: string) => {
  const keys: string[] = [];
  for await (const key of t.app.blobStore.keys(tenantId)) keys.push(key);
  return keys.sort();
};

// issue 11 item 5
for (const { database: db, driver } of STORAGE_ENGINES)
  describe(`orphaned blob sweep (${driver} on ${db})`, () => {
    let t: TestApp;
    let s3: S3Fixture | undefined;
    beforeAll(async () => {
      s3 = driver === 's3' ? await startS3rver() : undefined;
      t = await createTestApp(db, s3?.config() ?? {});
    });
    afterAll(async () => {
      await t?.close();
      await s3?.close();
    });

    it('removes unreferenced blobs past the grace period, never a referenced one or one being written', async () => {
      const tenant = await t.createTenant(`orphans-${driver}`);
      const upload = await t.app.server.inject({
        method: 'POST',
        url: '/api/v1/storage/upload?path=kept.txt',
        headers: { authorization: `Bearer ${tenant.adminToken}`, 'content-type': 'application/octet-stream' },
        payload: 'referenced',
      });
      expect(upload.statusCode).toBe(201);
      const [referenced] = await keysOf(t, tenant.id);
      // what a server killed mid-upload leaves: a blob under its key and no row
      const orphan = randomUUID();
      await t.app.blobStore.put(tenant.id, orphan, Readable.from([Buffer.alloc(4096, 1)]), {
        contentType: 'application/octet-stream',
      });
      await new Promise((r) => setTimeout(r, GRACE_MS + 200));
      // a write in progress (an upload slower than the sweep): still streaming when the sweep runs
      const writing = randomUUID();
      const body = new PassThrough();
      const inProgress = t.app.blobStore.put(tenant.id, writing, body, { contentType: 'text/plain' });
      body.write(Buffer.alloc(1024, 2));
      await new Promise((r) => setTimeout(r, 100));
      const sweep = createOrphanSweep({
        db: t.app.database.db,
        store: t.app.blobStore,
        tenants: t.app.services.tenants,
        graceMs: GRACE_MS,
        logger: t.app.logger,
      });
      expect((await sweep()).removed).toBe(1);
      body.end(Buffer.alloc(10, 3));
      await inProgress;
      expect(await keysOf(t, tenant.id)).toEqual([referenced, writing].sort());
      const kept = await t.app.server.inject({
        method: 'GET',
        url: '/api/v1/storage/download/kept.txt',
        headers: { authorization: `Bearer ${tenant.adminToken}` },
      });
      expect(kept.body).toBe('referenced');
      // the loop is registered on the scheduler role
      expect(t.app.modules.flatMap((m) => m.loops ?? []).map((l) => l.name)).toContain(
        'storage.orphan-sweep',
      );
    });
  });

// issue 11 item 7: a full disk under the filesystem store is a 507 with a stable code, and /health says so
const run = promisify(execFile);
const canMount = process.getuid?.() === 0 && existsSync('/usr/bin/mount');
describe.runIf(canMount && STORAGE_ENGINES.some((e) => e.driver === 'filesystem' && e.database === 'pglite'))(
  'a full disk under the filesystem store',
  () => {
    let t: TestApp;
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'plexica-full-'));
      await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
      await mkdir(path.join(dir, 'storage'));
      t = await createTestApp('pglite', {
        storageDir: path.join(dir, 'storage'),
        diskFreeMinMb: 2,
        healthCacheMs: 0,
      });
    });
    afterAll(async () => {
      await t?.close();
      await run('umount', [dir]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    });

    it('answers 507 PLX_DISK_FULL, leaves no partial blob, and reports the disk degraded', async () => {
      const tenant = await t.createTenant('full-disk');
      const res = await t.app.server.inject({
        method: 'POST',
        url: '/api/v1/storage/upload?path=big.bin',
        headers: { authorization: `Bearer ${tenant.adminToken}`, 'content-type': 'application/octet-stream' },
        payload: Buffer.alloc(3 * 1024 * 1024, 7),
      });
      expect(res.statusCode).toBe(507);
      expect(res.json().code).toBe('PLX_DISK_FULL');
      expect(await keysOf(t, tenant.id)).toEqual([]);
      const health = await t.request({ method: 'GET', url: '/health' });
      expect(health.status).toBe(200);
      expect(health.body.status).toBe('degraded');
      expect(health.body.checks.disk.status).toBe('degraded');
      expect(health.body.checks.disk.freeBytes).toBeLessThan(2 * 1024 * 1024);
    });
  },
);
