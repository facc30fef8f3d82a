import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, createTestApp, type TestApp } from './harness.js';

const REDIS_URL = process.env.PLEXICA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

const expect429 = (res: Awaited<ReturnType<TestApp['request']>>) => {
  expect(res.status).toBe(429);
  expect(res.body.code).toBe('PLX_RATE_LIMITED');
  expect(String(res.headers['content-type'])).toContain('application/problem+json');
  const retryAfter = Number(res.headers['retry-after']);
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(60);
};

// the store is what varies here, so these run on PGlite only
for (const store of ['memory', 'redis'] as const) {
  describe(`rate limits per user and per tenant (${store} store)`, () => {
    let t: TestApp;
    const suffix = randomBytes(3).toString('hex');
    const slug = (name: string) => `${name}-${suffix}`;
    beforeAll(async () => {
      t = await createTestApp('pglite', store === 'redis' ? { redisUrl: REDIS_URL } : {});
    });
    afterAll(async () => {
      await t?.close();
      if (store === 'redis') {
        const redis = new Redis(REDIS_URL);
        const keys = await redis.keys(`tenant:*-${suffix}:*`);
        if (keys.length > 0) await redis.del(...keys);
        await redis.quit();
      }
    });

    const usersOf = (token: string) => t.request({ method: 'GET', url: '/api/v1/users', token });
    const limitTenant = async (id: string, settings: Record<string, number>) => {
      const res = await t.request({
        method: 'PATCH',
        url: `/api/v1/tenants/${id}`,
        token: await t.adminToken(),
        body: { settings },
      });
      expect(res.body.settings).toMatchObject(settings);
    };

    it('applies a tenant’s per-user limit to its users only', async () => {
      const limited = await t.createTenant(slug('rl-one'));
      const spared = await t.createTenant(slug('rl-two'));
      await limitTenant(limited.id, { rateLimitUser: 3 });
      for (let i = 0; i < 3; i += 1) expect((await usersOf(limited.adminToken)).status).toBe(200);
      expect429(await usersOf(limited.adminToken));
      expect((await usersOf(spared.adminToken)).status).toBe(200);
    });

    it('applies a tenant-wide limit across its users', async () => {
      const tenant = await t.createTenant(slug('rl-wide'));
      await t.request({
        method: 'POST',
        url: '/api/v1/users',
        token: tenant.adminToken,
        body: { email: 'second@rl.test', password: 'second-password-1' },
      });
      const second = await t.login('second@rl.test', 'second-password-1', tenant.slug);
      // the window already holds the POST above: 1 + 4 = 5
      await limitTenant(tenant.id, { rateLimitTenant: 5 });
      expect((await usersOf(tenant.adminToken)).status).toBe(200);
      expect((await usersOf(tenant.adminToken)).status).toBe(200);
      expect((await usersOf(second)).status).toBe(200);
      expect((await usersOf(second)).status).toBe(200);
      expect429(await usersOf(second));
      expect429(await usersOf(tenant.adminToken));
    });

    if (store === 'redis') {
      it('keeps its counters in Redis under tenant:{slug}: keys and reports Redis on /health', async () => {
        const redis = new Redis(REDIS_URL);
        const keys = await redis.keys(`tenant:${slug('rl-one')}:*`);
        await redis.quit();
        expect(keys.length).toBeGreaterThan(0);
        for (const key of keys) expect(key.startsWith(`tenant:${slug('rl-one')}:rl:`)).toBe(true);
        const health = await t.request({ method: 'GET', url: '/health' });
        expect(health.body.checks.redis.status).toBe('up');
        expect(typeof health.body.checks.redis.latencyMs).toBe('number');
      });
    }
  });
}

describe('rate limit defaults from configuration', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp('pglite', { rateLimitUser: 2, rateLimitAnonymous: 3 });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('limits every principal, the super admin included, and anonymous logins per address', async () => {
    const token = await t.adminToken(); // anonymous request 1
    expect((await t.request({ method: 'GET', url: '/api/v1/tenants', token })).status).toBe(200);
    expect((await t.request({ method: 'GET', url: '/api/v1/tenants', token })).status).toBe(200);
    expect429(await t.request({ method: 'GET', url: '/api/v1/tenants', token }));
    const login = () =>
      t.request({
        method: 'POST',
        url: '/api/v1/auth/login',
        body: { ...ADMIN, password: 'wrong-password-0' },
      });
    expect((await login()).status).toBe(401);
    expect((await login()).status).toBe(401);
    expect429(await login());
  });
});
