import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enabled, REDIS_URL } from '../../../test/engines.js';
import { createTestApp, type TestApp } from '../../../test/harness.js';
import { type App, createApp } from '../../app/create-app.js';
import type { PlexicaConfig } from '../../config/index.js';

/**
 * Two instances of one deployment (one PostgreSQL database): a change made on
 * the first is refused on the second through the cluster signal channel, well
 * before the principal cache's TTL (60 s here, so only a signal explains it).
 */
const SIGNAL_BOUND_MS = 100;

interface Pair {
  first: TestApp;
  second: App;
  /** `second`, called like TestApp.request. */
  onSecond(url: string, token: string): Promise<{ status: number; code: string | undefined }>;
  close(): Promise<void>;
}

async function startPair(overrides: Partial<PlexicaConfig>): Promise<Pair> {
  const first = await createTestApp('postgres', overrides);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'plexica-second-'));
  const second = await createApp({ ...first.config, dataDir });
  return {
    first,
    second,
    async onSecond(url, token) {
      const res = await second.server.inject({
        method: 'GET',
        url,
        headers: { authorization: `Bearer ${token}` },
      });
      return { status: res.statusCode, code: res.statusCode >= 400 ? res.json().code : undefined };
    },
    async close() {
      await second.close();
      await rm(dataDir, { recursive: true, force: true });
      await first.close();
    },
  };
}

/** The second instance's answer once `SIGNAL_BOUND_MS` has passed since the change returned. */
const afterBound = async (pair: Pair, url: string, token: string) => {
  await new Promise((r) => setTimeout(r, SIGNAL_BOUND_MS));
  return pair.onSecond(url, token);
};

const CHANNELS = [
  ...(enabled('postgres')
    ? [{ name: 'postgres', overrides: (): Partial<PlexicaConfig> => ({ signalsDriver: 'postgres' }) }]
    : []),
  ...(enabled('postgres', 'redis')
    ? [
        {
          name: 'redis',
          overrides: (): Partial<PlexicaConfig> => ({
            signalsDriver: 'redis',
            redisUrl: REDIS_URL,
            signalsPrefix: `plx_test_${randomBytes(4).toString('hex')}`,
          }),
        },
      ]
    : []),
];

for (const channel of CHANNELS) {
  describe(`principal cache across instances (signals on ${channel.name})`, () => {
    let pair: Pair;
    let tenant: Awaited<ReturnType<TestApp['createTenant']>>;
    beforeAll(async () => {
      pair = await startPair({ ...channel.overrides(), principalCacheTtlSeconds: 60 });
      tenant = await pair.first.createTenant(`cache-${channel.name}`);
    });
    afterAll(async () => {
      await pair?.close();
    });

    const member = async (email: string, roles?: string[]) => {
      const created = await pair.first.request({
        method: 'POST',
        url: '/api/v1/users',
        token: tenant.adminToken,
        body: { email, password: 'member-password-1', ...(roles && { roles }) },
      });
      expect(created.status).toBe(201);
      const login = await pair.first.request({
        method: 'POST',
        url: '/api/v1/auth/login',
        body: { email, password: 'member-password-1', tenant: tenant.slug },
      });
      return {
        id: created.body.id as string,
        ...(login.body as { accessToken: string; refreshToken: string }),
      };
    };

    it('refuses a logged-out session on the other instance', async () => {
      const user = await member(`out@${channel.name}.test`);
      expect((await pair.onSecond('/api/v1/users', user.accessToken)).status).toBe(200);
      const out = await pair.first.request({
        method: 'POST',
        url: '/api/v1/auth/logout',
        body: { refreshToken: user.refreshToken },
      });
      expect(out.status).toBe(204);
      expect(await afterBound(pair, '/api/v1/users', user.accessToken)).toEqual({
        status: 401,
        code: 'PLX_AUTH_SESSION_REVOKED',
      });
    });

    it('refuses a revoked API key on the other instance', async () => {
      const key = await pair.first.request({
        method: 'POST',
        url: '/api/v1/api-keys',
        token: tenant.adminToken,
        body: { name: 'k', permissions: ['core:user:read'] },
      });
      expect((await pair.onSecond('/api/v1/users', key.body.secret)).status).toBe(200);
      const revoked = await pair.first.request({
        method: 'DELETE',
        url: `/api/v1/api-keys/${key.body.key.id}`,
        token: tenant.adminToken,
      });
      expect(revoked.status).toBe(200);
      expect(await afterBound(pair, '/api/v1/users', key.body.secret)).toEqual({
        status: 401,
        code: 'PLX_AUTH_API_KEY_INVALID',
      });
    });

    it('takes a role’s permission away on the other instance', async () => {
      const role = await pair.first.request({
        method: 'POST',
        url: '/api/v1/roles',
        token: tenant.adminToken,
        body: { key: 'auditor', name: 'Auditor', permissions: ['core:audit:read'] },
      });
      expect(role.status).toBe(201);
      const user = await member(`aud@${channel.name}.test`, ['member', 'auditor']);
      expect((await pair.onSecond('/api/v1/audit-events', user.accessToken)).status).toBe(200);
      const narrowed = await pair.first.request({
        method: 'PATCH',
        url: '/api/v1/roles/auditor',
        token: tenant.adminToken,
        body: { permissions: [] },
      });
      expect(narrowed.status).toBe(200);
      expect(await afterBound(pair, '/api/v1/audit-events', user.accessToken)).toEqual({
        status: 403,
        code: 'PLX_PERMISSION_DENIED',
      });
    });

    it('refuses a disabled user on the other instance', async () => {
      const user = await member(`off@${channel.name}.test`);
      expect((await pair.onSecond('/api/v1/users', user.accessToken)).status).toBe(200);
      const disabled = await pair.first.request({
        method: 'PATCH',
        url: `/api/v1/users/${user.id}`,
        token: tenant.adminToken,
        body: { status: 'disabled' },
      });
      expect(disabled.status).toBe(200);
      expect((await afterBound(pair, '/api/v1/users', user.accessToken)).status).toBe(401);
    });

    it('refuses a suspended tenant’s credentials on the other instance', async () => {
      const other = await pair.first.createTenant(`held-${channel.name}`);
      const key = await pair.first.request({
        method: 'POST',
        url: '/api/v1/api-keys',
        token: other.adminToken,
        body: { name: 'k', permissions: ['core:user:read'] },
      });
      expect((await pair.onSecond('/api/v1/users', key.body.secret)).status).toBe(200);
      expect((await pair.onSecond('/api/v1/users', other.adminToken)).status).toBe(200);
      const suspended = await pair.first.request({
        method: 'PATCH',
        url: `/api/v1/tenants/${other.id}`,
        token: await pair.first.adminToken(),
        body: { status: 'suspended' },
      });
      expect(suspended.status).toBe(200);
      expect(await afterBound(pair, '/api/v1/users', key.body.secret)).toEqual({
        status: 403,
        code: 'PLX_TENANT_SUSPENDED',
      });
      // the suspension also ended the tenant's sessions
      expect(await pair.onSecond('/api/v1/users', other.adminToken)).toEqual({
        status: 401,
        code: 'PLX_AUTH_SESSION_REVOKED',
      });
    });

    it('never serves one credential’s principal for another’s', async () => {
      const other = await pair.first.createTenant(`apart-${channel.name}`);
      const mine = await pair.first.request({
        method: 'POST',
        url: '/api/v1/api-keys',
        token: tenant.adminToken,
        body: { name: 'mine', permissions: ['core:user:read'] },
      });
      const theirs = await pair.first.request({
        method: 'POST',
        url: '/api/v1/api-keys',
        token: other.adminToken,
        body: { name: 'theirs', permissions: ['core:user:read'] },
      });
      const emailsWith = async (token: string) => {
        const res = await pair.second.server.inject({
          method: 'GET',
          url: '/api/v1/users',
          headers: { authorization: `Bearer ${token}` },
        });
        return (res.json().items as { email: string }[]).map((u) => u.email);
      };
      // each credential, cached, answers for its own tenant only, in any order
      for (let round = 0; round < 2; round++) {
        expect(await emailsWith(mine.body.secret)).toContain(`admin@${tenant.slug}.test`);
        expect(await emailsWith(theirs.body.secret)).toEqual([`admin@${other.slug}.test`]);
        expect(await emailsWith(other.adminToken)).toEqual([`admin@${other.slug}.test`]);
        expect(await emailsWith(tenant.adminToken)).not.toContain(`admin@${other.slug}.test`);
      }
      // a cached key's prefix with another secret is a wrong key, not a cache hit
      const forged = `${mine.body.key.prefix}_${'A'.repeat(43)}`;
      expect(await pair.onSecond('/api/v1/users', forged)).toEqual({
        status: 401,
        code: 'PLX_AUTH_API_KEY_INVALID',
      });
      // a tenant's token cannot name the other tenant
      const crossed = await pair.second.server.inject({
        method: 'GET',
        url: '/api/v1/users',
        headers: { authorization: `Bearer ${tenant.adminToken}`, 'x-tenant-id': other.id },
      });
      expect(crossed.statusCode).toBe(403);
    });
  });
}

for (const channel of CHANNELS) {
  describe(`principal cache when the signal channel is down (${channel.name})`, () => {
    let pair: Pair;
    let tenant: Awaited<ReturnType<TestApp['createTenant']>>;
    const TTL_SECONDS = 1;
    beforeAll(async () => {
      pair = await startPair({ ...channel.overrides(), principalCacheTtlSeconds: TTL_SECONDS });
      tenant = await pair.first.createTenant(`down-${channel.name}`);
    });
    afterAll(async () => {
      await pair?.close();
    });

    it('refuses a revoked API key on the other instance within the TTL', async () => {
      const key = await pair.first.request({
        method: 'POST',
        url: '/api/v1/api-keys',
        token: tenant.adminToken,
        body: { name: 'k', permissions: ['core:user:read'] },
      });
      expect((await pair.onSecond('/api/v1/users', key.body.secret)).status).toBe(200);
      // the second instance loses its channel (the shared engine stays up for everyone else):
      // the revocation's signal never reaches it
      await pair.second.signals.close();
      expect(pair.second.signals.connected).toBe(false);
      const revoked = await pair.first.request({
        method: 'DELETE',
        url: `/api/v1/api-keys/${key.body.key.id}`,
        token: tenant.adminToken,
      });
      expect(revoked.status).toBe(200);
      // the first instance refuses at once; the second serves its cached principal until the TTL
      const here = await pair.first.request({ method: 'GET', url: '/api/v1/users', token: key.body.secret });
      expect(here.status).toBe(401);
      await new Promise((r) => setTimeout(r, TTL_SECONDS * 1000 + 50));
      expect(await pair.onSecond('/api/v1/users', key.body.secret)).toEqual({
        status: 401,
        code: 'PLX_AUTH_API_KEY_INVALID',
      });
    });
  });
}
