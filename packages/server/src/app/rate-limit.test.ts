import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, createTestApp, type TestApp } from '../../test/harness.js';
import { ConfigError, loadConfig } from '../config/index.js';

const REDIS_URL = process.env.PLEXICA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A 429 problem whose Retry-After is within the window (`maxRetryAfter` seconds). */
const expect429 = (res: Awaited<ReturnType<TestApp['request']>>, maxRetryAfter = 60) => {
  expect(res.status).toBe(429);
  expect(res.body.code).toBe('PLX_RATE_LIMITED');
  expect(String(res.headers['content-type'])).toContain('application/problem+json');
  const retryAfter = Number(res.headers['retry-after']);
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(maxRetryAfter);
};

// the store is what varies here, so these run on PGlite only
for (const store of ['memory', 'redis'] as const) {
  describe(`rate limits per user and per tenant (${store} store)`, () => {
    let t: TestApp;
    const suffix = randomBytes(3).toString('hex');
    const slug = (name: string) => `${name}-${suffix}`;
    beforeAll(async () => {
      t = await createTestApp('pglite', {
        loginMaxFailures: 3,
        ...(store === 'redis' && { redisUrl: REDIS_URL }),
      });
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

    it('locks an account after its failed logins, for unknown emails alike, until a success or the window', async () => {
      const tenant = await t.createTenant(slug('rl-login'));
      await t.request({
        method: 'POST',
        url: '/api/v1/users',
        token: tenant.adminToken,
        body: { email: 'locked@rl.test', password: 'right-password-1' },
      });
      const login = (email: string, password: string, tenantName: string = tenant.slug) =>
        t.request({
          method: 'POST',
          url: '/api/v1/auth/login',
          body: { email, password, tenant: tenantName },
        });
      // two failures, then a success clears the counter
      for (let i = 0; i < 2; i += 1)
        expect((await login('locked@rl.test', 'wrong-password')).status).toBe(401);
      expect((await login('Locked@RL.test', 'right-password-1')).status).toBe(200);
      for (let i = 0; i < 3; i += 1)
        expect((await login('locked@rl.test', 'wrong-password')).status).toBe(401);
      // now even the right password waits: it is not checked at all
      const locked = await login('locked@rl.test', 'right-password-1');
      expect429(locked, t.config.loginFailureWindowSeconds);
      expect(locked.body.detail).toMatch(/failed logins for this account/);
      // an unknown email, or an unknown tenant, locks the same way: a 429 tells nothing of existence
      for (const [email, tenantName] of [
        ['ghost@rl.test', tenant.slug],
        ['ghost@rl.test', slug('no-such-tenant')],
      ] as const) {
        for (let i = 0; i < 3; i += 1)
          expect((await login(email, 'wrong-password', tenantName)).status).toBe(401);
        expect429(await login(email, 'wrong-password', tenantName), t.config.loginFailureWindowSeconds);
      }
      // the same email in another tenant is another account
      const other = await t.createTenant(slug('rl-login-b'));
      await t.request({
        method: 'POST',
        url: '/api/v1/users',
        token: other.adminToken,
        body: { email: 'locked@rl.test', password: 'right-password-1' },
      });
      expect((await login('locked@rl.test', 'right-password-1', other.slug)).status).toBe(200);
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

describe('PLEXICA_TRUST_PROXY', () => {
  const parse = (value: string) => {
    try {
      return { value: loadConfig({ PLEXICA_TRUST_PROXY: value }).trustProxy };
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return { problems: (err as ConfigError).problems };
    }
  };

  it('takes a hop count or a list of addresses and CIDRs, and refuses "trust every hop"', () => {
    expect(parse('false')).toEqual({ value: 0 });
    expect(parse('0')).toEqual({ value: 0 });
    expect(parse('2')).toEqual({ value: 2 });
    expect(parse('10.0.0.0/8, 192.0.2.1,fd00::/8, loopback')).toEqual({
      value: ['10.0.0.0/8', '192.0.2.1', 'fd00::/8', 'loopback'],
    });
    expect(parse('true').problems?.[0]).toMatch(
      /^PLEXICA_TRUST_PROXY: true \(trust every hop\) is no longer accepted.*number of proxies.*addresses\/CIDRs/,
    );
    expect(parse('10.0.0.0/33').problems?.[0]).toMatch(/prefix length outside 0–32/);
    expect(parse('proxy.internal').problems?.[0]).toMatch(/not an IP address or CIDR/);
    expect(parse('99').problems?.[0]).toMatch(/hop count from 0 to 32/);
  });
});

// one proxy in front, named by hop count or by address: the client's own X-Forwarded-For
// entries come before the one the proxy appends, and are never believed
for (const trustProxy of [1, ['127.0.0.1/32']] as const) {
  describe(`limits behind a trusted proxy (trustProxy ${JSON.stringify(trustProxy)})`, () => {
    let t: TestApp;
    let tenant: Awaited<ReturnType<TestApp['createTenant']>>;
    beforeAll(async () => {
      t = await createTestApp('pglite', {
        trustProxy: typeof trustProxy === 'number' ? trustProxy : [...trustProxy],
        rateLimitAnonymous: 5,
        loginMaxFailures: 3,
      });
      tenant = await t.createTenant('rl-proxy');
    });
    afterAll(async () => {
      await t?.close();
    });

    /** What the proxy forwards: whatever the client wrote, then the address it saw. */
    const via = (client: string, written = '') => ({
      'x-forwarded-for': written ? `${written}, ${client}` : client,
    });
    const login = (headers: Record<string, string>, email = ADMIN.email) =>
      t.request({
        method: 'POST',
        url: '/api/v1/auth/login',
        body: { email, password: 'wrong-password-0' },
        headers,
      });

    it('gives a client that writes its own X-Forwarded-For no fresh bucket', async () => {
      for (let i = 0; i < 5; i += 1)
        expect((await login(via('198.51.100.7', `203.0.113.${i}`), `nobody${i}@rl.test`)).status).toBe(401);
      expect429(await login(via('198.51.100.7', '203.0.113.99'), 'nobody99@rl.test'));
      // another client behind the same proxy has its own bucket
      expect((await login(via('198.51.100.8'), 'nobody100@rl.test')).status).toBe(401);
    });

    it('locks an account whatever address the failures come from', async () => {
      const email = `admin@${tenant.slug}.test`;
      const attempt = (i: number, password: string) =>
        t.request({
          method: 'POST',
          url: '/api/v1/auth/login',
          body: { email, password, tenant: tenant.slug },
          headers: via(`192.0.2.${i}`),
        });
      for (let i = 0; i < 3; i += 1) expect((await attempt(i, 'wrong-password')).status).toBe(401);
      expect429(await attempt(10, 'tenant-admin-pw-1'), t.config.loginFailureWindowSeconds);
    });

    it('counts failed bearer credentials against the address, and stops looking them up', async () => {
      const client = via('198.51.100.20');
      const users = (token: string, headers = client) =>
        t.request({ method: 'GET', url: '/api/v1/users', token, headers });
      // valid credentials do not spend the anonymous window
      for (let i = 0; i < 10; i += 1) expect((await users(tenant.adminToken)).status).toBe(200);
      const [header, payload] = tenant.adminToken.split('.');
      const badJwt = `${header}.${payload}.${'A'.repeat(43)}`;
      // a well-formed key: the right prefix length, a secret that is not the key's
      const badKey = `plx_${'a'.repeat(12)}_${'b'.repeat(43)}`;
      for (let i = 0; i < 5; i += 1) {
        expect((await users(i % 2 === 0 ? badJwt : badKey)).status).toBe(401);
      }
      for (const token of [badJwt, badKey]) {
        const res = await users(token);
        expect429(res);
        expect(res.body.detail).toMatch(/failed credentials from this address/);
      }
      // the address stays blocked for the window, even with a valid credential;
      // another address is not
      expect429(await users(tenant.adminToken));
      expect((await users(tenant.adminToken, via('198.51.100.21'))).status).toBe(200);
    });
  });
}
