import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../app/create-app.js';
import { loadConfig, type PlexicaConfig } from '../../config/index.js';
import { openDatabase } from './index.js';

describe('embedded database (PGlite behind a worker thread)', () => {
  let dataDir: string;
  let config: PlexicaConfig;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'plexica-embedded-'));
    await cp(inject('pgliteTemplate'), path.join(dataDir, 'pgdata'), { recursive: true });
    // no master key given: embedded mode generates one into the data dir and must find it again
    config = loadConfig(
      {},
      { dataDir, logLevel: 'silent', adminPassword: 'embedded-admin-1', rateLimitUser: 1_000_000 },
    );
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  const login = async (app: Awaited<ReturnType<typeof createApp>>) => {
    const res = await app.server.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: 'admin@plexica.local', password: 'embedded-admin-1' },
    });
    expect(res.statusCode).toBe(200);
    return res.json().accessToken as string;
  };

  it('keeps data, keys and sessions across a restart', async () => {
    const first = await createApp(config);
    expect(await first.bootstrapAdmin()).toMatchObject({ email: expect.any(String) });
    const token = await login(first);
    const created = await first.server.inject({
      method: 'POST',
      url: '/api/v1/tenants',
      headers: { authorization: `Bearer ${token}` },
      payload: { slug: 'durable', name: 'Durable' },
    });
    expect(created.statusCode).toBe(201);
    await first.close();

    const second = await createApp(config);
    try {
      expect(await second.bootstrapAdmin()).toBeUndefined();
      // the access token from before the restart still verifies: same signing key, same session
      const list = await second.server.inject({
        method: 'GET',
        url: '/api/v1/tenants',
        headers: { authorization: `Bearer ${token}` },
      });
      expect(list.statusCode).toBe(200);
      expect(list.json().items.map((t: { slug: string }) => t.slug)).toEqual(['durable']);
    } finally {
      await second.close();
    }
  });

  it('serves many concurrent requests through its single connection without protocol errors', async () => {
    const app = await createApp(config);
    try {
      await app.bootstrapAdmin();
      const token = await login(app);
      const headers = { authorization: `Bearer ${token}`, 'x-tenant-id': 'durable' };
      const requests = Array.from({ length: 120 }, (_, i) =>
        i % 3 === 0
          ? app.server.inject({
              method: 'POST',
              url: '/api/v1/users',
              headers,
              payload: { email: `u${i}@durable.test` },
            })
          : app.server.inject({ method: 'GET', url: '/api/v1/users?limit=5', headers }),
      );
      const statuses = (await Promise.all(requests)).map((r) => r.statusCode);
      expect(statuses.filter((s) => s >= 300)).toEqual([]);
      const users = await app.server.inject({ method: 'GET', url: '/api/v1/users?limit=1', headers });
      expect(users.json().total).toBe(40);
    } finally {
      await app.close();
    }
  });

  it('refuses a second opener of the same data dir with a clear error', async () => {
    const first = await openDatabase(config);
    try {
      await expect(openDatabase(config)).rejects.toMatchObject({
        code: 'PLX_DATABASE_UNAVAILABLE',
        message: expect.stringContaining('is in use by another plexica process'),
      });
    } finally {
      await first.close();
    }
    const again = await openDatabase(config);
    await again.close();
  });
});
