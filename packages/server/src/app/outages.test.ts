import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASES } from '../../test/engines.js';
import { createTestApp, type TestApp } from '../../test/harness.js';
import {
  canRunOwnPostgres,
  canRunOwnRedis,
  type OwnPostgres,
  type OwnRedis,
  startOwnPostgres,
  startOwnRedis,
} from '../../test/own-engines.js';

/** A request that has not answered after this long counts as hung (the fault run's clients gave up at 10 s). */
const HUNG_MS = 8000;
const answered = async <T>(request: Promise<T>): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`request hung for ${HUNG_MS} ms`)), HUNG_MS);
  });
  return Promise.race([request, hung]).finally(() => clearTimeout(timer));
};
const eventually = async (what: string, check: () => Promise<boolean>, ms = 15_000) => {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

// issue 11 item 3
describe.runIf(canRunOwnPostgres && DATABASES.includes('postgres'))('a frozen PostgreSQL', () => {
  let pg: OwnPostgres;
  let t: TestApp;
  beforeAll(async () => {
    pg = await startOwnPostgres();
    t = await createTestApp('postgres', {
      databaseUrl: pg.url,
      databaseConnectTimeoutMs: 1000,
      databaseStatementTimeoutMs: 1000,
      healthTimeoutMs: 300,
      healthCacheMs: 0,
    });
  });
  afterAll(async () => {
    pg?.thaw();
    await t?.close();
    await pg?.stop();
  });

  it('answers 503 PLX_DATABASE_UNAVAILABLE with Retry-After, /ready not ready, /health naming it; recovers', async () => {
    const token = await t.adminToken();
    const list = () => t.request({ method: 'GET', url: '/api/v1/tenants', token });
    expect((await list()).status).toBe(200);
    pg.freeze();
    try {
      // more requests than pool connections: some wait for a connection, some on a frozen one
      const responses = await Promise.all(Array.from({ length: 8 }, () => answered(list())));
      for (const res of responses) {
        expect(res.status).toBe(503);
        expect(res.body.code).toBe('PLX_DATABASE_UNAVAILABLE');
        expect(res.headers['retry-after']).toBe('5');
      }
      const health = await answered(t.request({ method: 'GET', url: '/health' }));
      expect(health.status).toBe(503);
      expect(health.body.checks.database.status).toBe('down');
      expect(health.body.checks.disk.status).toBe('up');
      const ready = await answered(t.request({ method: 'GET', url: '/ready' }));
      expect(ready.status).toBe(503);
      expect(ready.body).toEqual({ status: 'not_ready', down: ['database'] });
    } finally {
      pg.thaw();
    }
    await eventually('recovery', async () => (await list()).status === 200);
    expect((await t.request({ method: 'GET', url: '/ready' })).status).toBe(200);
  });

  it('survives the server dying under a running statement (no unhandled error event)', async () => {
    const running = sql`select pg_sleep(3)`.execute(t.app.database.db).then(
      () => 'finished',
      (err: Error) => err.message,
    );
    await new Promise((r) => setTimeout(r, 300));
    await pg.stop();
    expect(await running).toMatch(/terminat|timeout|shut/i);
    const health = await answered(t.request({ method: 'GET', url: '/health' }));
    expect(health.body.checks.database.status).toBe('down');
  });
});

// issue 11 item 4
describe.runIf(canRunOwnRedis)('Redis down or frozen', () => {
  let redis: OwnRedis;
  beforeAll(async () => {
    redis = await startOwnRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  describe('rate limits (Redis not essential)', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp('pglite', {
        redisUrl: redis.url,
        redisCommandTimeoutMs: 300,
        healthCacheMs: 0,
      });
    });
    afterAll(async () => {
      await t?.close();
    });

    it('fail open with a metric while Redis is down or frozen, never a 500 or a hang', async () => {
      const token = await t.adminToken();
      const list = () => answered(t.request({ method: 'GET', url: '/api/v1/tenants', token }));
      expect((await list()).status).toBe(200);
      await redis.kill();
      try {
        for (const res of await Promise.all(Array.from({ length: 10 }, list))) expect(res.status).toBe(200);
        const health = await answered(t.request({ method: 'GET', url: '/health' }));
        expect(health.status).toBe(503);
        expect(health.body.checks.redis.status).toBe('down');
        expect((await answered(t.request({ method: 'GET', url: '/ready' }))).status).toBe(200);
        const metrics = String((await t.request({ method: 'GET', url: '/metrics' })).body);
        expect(metrics).toMatch(/^plexica_rate_limit_fallback_total [1-9]\d*$/m);
      } finally {
        await redis.start();
      }
      // back to shared counters once Redis answers
      await eventually('Redis counters again', async () => {
        await list();
        const probe = new Redis(redis.url);
        const keys = await probe.keys('*');
        probe.disconnect();
        return keys.length > 0;
      });
      redis.freeze();
      try {
        for (const res of await Promise.all(Array.from({ length: 5 }, list))) expect(res.status).toBe(200);
      } finally {
        redis.thaw();
      }
    });
  });

  describe('jobs on BullMQ (Redis essential)', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp('pglite', {
        redisUrl: redis.url,
        jobsDriver: 'redis',
        jobsRedisPrefix: `plx-outage-${randomBytes(4).toString('hex')}`,
        redisCommandTimeoutMs: 300,
        healthCacheMs: 0,
      });
      t.app.services.jobs.define({ type: 'test.outage', handler: async () => null });
    });
    afterAll(async () => {
      await t?.close();
    });

    it('refuses new jobs with 503 PLX_JOBS_UNAVAILABLE and /ready says not ready while Redis is down', async () => {
      const tenant = await t.createTenant('outage-jobs');
      const enqueue = () =>
        answered(
          t.request({
            method: 'POST',
            url: '/api/v1/jobs',
            token: tenant.adminToken,
            body: { type: 'test.outage' },
          }),
        );
      expect((await enqueue()).status).toBe(201);
      await redis.kill();
      try {
        await eventually('the engine noticing', async () => (await enqueue()).status !== 201, 5000);
        const refused = await enqueue();
        expect(refused.status).toBe(503);
        expect(refused.body.code).toBe('PLX_JOBS_UNAVAILABLE');
        expect(refused.headers['retry-after']).toBe('5');
        const ready = await answered(t.request({ method: 'GET', url: '/ready' }));
        expect(ready.status).toBe(503);
        expect(ready.body.down).toEqual(['redis']);
      } finally {
        await redis.start();
      }
      await eventually('jobs accepted again', async () => (await enqueue()).status === 201);
    });
  });
});
