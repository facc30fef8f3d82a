import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type S3Fixture, startFaultyProxy, startS3rver } from '../../../test/s3-fixture.js';
import type { BlobStore } from './drivers/blob-store.js';
import { createFilesystemBlobStore } from './drivers/filesystem.js';
import { createS3BlobStore, type S3BlobStoreOptions } from './drivers/s3.js';

const s3Options = (endpoint: string, mode: 'bucket' | 'prefix'): S3BlobStoreOptions => ({
  endpoint,
  region: 'us-east-1',
  accessKeyId: 'S3RVER',
  secretAccessKey: 'S3RVER',
  forcePathStyle: true,
  mode,
  bucket: mode === 'prefix' ? 'plexica-shared' : undefined,
  bucketPrefix: '',
});

const collect = async (keys: AsyncIterable<string>) => {
  const all: string[] = [];
  for await (const key of keys) all.push(key);
  return all.sort();
};

const failing = (after: Buffer, error: Error) =>
  new Readable({
    read() {
      this.push(after);
      this.destroy(error);
    },
  });

let s3: S3Fixture;
let root: string;
beforeAll(async () => {
  s3 = await startS3rver();
  root = await mkdtemp(path.join(os.tmpdir(), 'plexica-blobs-'));
});
afterAll(async () => {
  await s3?.close();
  await rm(root, { recursive: true, force: true });
});

/** The one contract every blob store driver passes. */
describe.each([
  ['filesystem', () => createFilesystemBlobStore(root)],
  ['s3 (bucket per tenant)', () => createS3BlobStore(s3Options(s3.endpoint, 'bucket'))],
  ['s3 (prefix per tenant)', () => createS3BlobStore(s3Options(s3.endpoint, 'prefix'))],
] as const)('blob store contract: %s', (_name, make) => {
  let store: BlobStore;
  const tenantA = randomUUID();
  const tenantB = randomUUID();
  beforeAll(async () => {
    store = make();
    await store.createNamespace(tenantA);
    await store.createNamespace(tenantA); // idempotent
    await store.createNamespace(tenantB);
  });
  afterAll(() => store.close());

  it('writes, reads whole and ranged, copies and deletes a blob', async () => {
    const key = randomUUID();
    const bytes = await store.put(
      tenantA,
      key,
      Readable.from([Buffer.from('hello '), Buffer.from('world')]),
      {
        contentType: 'text/plain',
      },
    );
    expect(bytes).toBe(11);
    expect(await text(await store.get(tenantA, key))).toBe('hello world');
    expect(await text(await store.get(tenantA, key, { start: 6, end: 10 }))).toBe('world');
    expect(await text(await store.get(tenantA, key, { start: 0, end: 0 }))).toBe('h');

    const copy = randomUUID();
    await store.copy(tenantA, key, copy);
    expect(await text(await store.get(tenantA, copy))).toBe('hello world');
    expect(await collect(store.keys(tenantA))).toEqual([key, copy].sort());

    await store.delete(tenantA, key);
    await store.delete(tenantA, key); // a missing blob is not an error
    await expect(store.get(tenantA, key)).rejects.toMatchObject({ code: 'PLX_STORAGE_BLOB_MISSING' });
    await store.delete(tenantA, copy);
  });

  it('streams a large blob without changing a byte', async () => {
    const key = randomUUID();
    const chunk = Buffer.alloc(1024 * 1024);
    const hash = createHash('sha256');
    let sent = 0;
    // 24 MiB of varied bytes: more than one multipart part on S3
    const source = new Readable({
      read() {
        if (sent === 24) return this.push(null);
        chunk.fill(sent * 7 + 1);
        chunk.writeUInt32BE(sent, 100);
        hash.update(chunk);
        sent++;
        this.push(Buffer.from(chunk));
      },
    });
    expect(await store.put(tenantA, key, source, { contentType: 'application/octet-stream' })).toBe(
      24 * 1024 * 1024,
    );
    const back = createHash('sha256');
    for await (const part of await store.get(tenantA, key)) back.update(part as Buffer);
    expect(back.digest('hex')).toBe(hash.digest('hex'));
    await store.delete(tenantA, key);
  });

  it('reports the stream’s own error and leaves nothing behind when the body fails', async () => {
    const key = randomUUID();
    const error = new Error('client went away');
    await expect(
      store.put(tenantA, key, failing(Buffer.alloc(1000, 1), error), { contentType: 'text/plain' }),
    ).rejects.toBe(error);
    expect(await collect(store.keys(tenantA))).not.toContain(key);
  });

  it('keeps tenants apart: one tenant’s keys are not reachable in another’s namespace', async () => {
    const key = randomUUID();
    await store.put(tenantA, key, Readable.from([Buffer.from('secret of A')]), { contentType: 'text/plain' });
    await expect(store.get(tenantB, key)).rejects.toMatchObject({ code: 'PLX_STORAGE_BLOB_MISSING' });
    expect(await collect(store.keys(tenantB))).not.toContain(key);
    await store.delete(tenantB, key); // deleting "the same key" in B does nothing to A
    expect(await text(await store.get(tenantA, key))).toBe('secret of A');
    await store.delete(tenantA, key);
  });

  it('refuses keys and tenant ids that are not UUIDs before touching the engine', async () => {
    await expect(store.get(tenantA, '../etc/passwd')).rejects.toThrow(/not a blob key/);
    await expect(store.get('../x', randomUUID())).rejects.toThrow(/not a tenant id/);
  });

  it('deletes a namespace with everything in it, and again without complaint', async () => {
    const tenant = randomUUID();
    await store.createNamespace(tenant);
    for (let i = 0; i < 3; i++)
      await store.put(tenant, randomUUID(), Readable.from([Buffer.from(`blob ${i}`)]), {
        contentType: 'text/plain',
      });
    expect(await collect(store.keys(tenant))).toHaveLength(3);
    await store.deleteNamespace(tenant);
    await store.deleteNamespace(tenant);
    expect(await collect(store.keys(tenant))).toEqual([]);
    expect(await collect(store.keys(tenantA))).toEqual([]); // the neighbour is untouched (and empty by now)
  });

  it('answers a health ping', async () => {
    expect(await store.ping()).toBeGreaterThanOrEqual(0);
  });
});

describe('filesystem layout', () => {
  it('keeps each tenant in its own directory tenant-{id}', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'plexica-layout-'));
    const store = createFilesystemBlobStore(dir);
    const tenant = randomUUID();
    await store.put(tenant, randomUUID(), Readable.from([Buffer.from('x')]), { contentType: 'text/plain' });
    expect(await readdir(dir)).toEqual([`tenant-${tenant}`]);
    await rm(dir, { recursive: true, force: true });
  });
});

describe('s3 resilience (seed 000 edge case 2)', () => {
  it('retries transient 503s with backoff and succeeds', async () => {
    const proxy = await startFaultyProxy(s3.endpoint);
    const store = createS3BlobStore(s3Options(proxy.endpoint, 'prefix'));
    try {
      const tenant = randomUUID();
      const key = randomUUID();
      await store.put(tenant, key, Readable.from([Buffer.from('x')]), { contentType: 'text/plain' });
      proxy.state.failures = 3;
      proxy.state.seen = 0;
      expect(await text(await store.get(tenant, key))).toBe('x');
      expect(proxy.state.seen).toBe(4); // three 503s, then the answer
    } finally {
      await store.close();
      await proxy.close();
    }
  });

  it('gives up after 3 retries with PLX_STORAGE_UNAVAILABLE', async () => {
    const proxy = await startFaultyProxy(s3.endpoint);
    const store = createS3BlobStore(s3Options(proxy.endpoint, 'prefix'));
    try {
      proxy.state.failures = 100;
      const error = await store.get(randomUUID(), randomUUID()).catch((err: unknown) => err);
      expect(error).toMatchObject({ code: 'PLX_STORAGE_UNAVAILABLE', kind: 'unavailable' });
      expect((error as Error).message).toMatch(/after 4 attempts/);
      expect(proxy.state.seen).toBe(4);
    } finally {
      await store.close();
      await proxy.close();
    }
  });

  it('names an unreachable engine in the error', async () => {
    const store = createS3BlobStore({ ...s3Options('http://127.0.0.1:1', 'prefix'), maxAttempts: 2 });
    const error = await store.get(randomUUID(), randomUUID()).catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'PLX_STORAGE_UNAVAILABLE' });
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
    await store.close();
  });
});
