import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASES } from '../../../test/engines.js';
import { createTestApp, type TestApp } from '../../../test/harness.js';

// seed 002: events 1,000 / 15 min and webhook management 50 / 15 min per tenant, here made small
describe.skipIf(DATABASES.length === 0)(
  'per-tenant rate limits of the events API and webhook management',
  () => {
    let t: TestApp;
    let a: Awaited<ReturnType<TestApp['createTenant']>>;
    let b: Awaited<ReturnType<TestApp['createTenant']>>;
    beforeAll(async () => {
      t = await createTestApp(DATABASES[0] ?? 'pglite', {
        eventsPublishRateLimit: 3,
        webhooksManageRateLimit: 2,
      });
      a = await t.createTenant('acme');
      b = await t.createTenant('beta');
    });
    afterAll(async () => {
      await t?.close();
    });

    it('answers 429 with Retry-After past the budget, per tenant', async () => {
      const appOf = async (token: string) =>
        (await t.request({ method: 'POST', url: '/api/v1/apps', token, body: { name: 'App' } })).body
          .id as string;
      const [appA, appB] = [await appOf(a.adminToken), await appOf(b.adminToken)];
      const publish = (token: string, app: string) =>
        t.request({
          method: 'POST',
          url: `/api/v1/apps/${app}/events`,
          token,
          body: { category: 'crm', type: 'x.y' },
        });
      for (let i = 0; i < 3; i++) expect((await publish(a.adminToken, appA)).status).toBe(201);
      const over = await publish(a.adminToken, appA);
      expect({ status: over.status, code: over.body.code }).toEqual({
        status: 429,
        code: 'PLX_RATE_LIMITED',
      });
      expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
      // another tenant has its own budget
      expect((await publish(b.adminToken, appB)).status).toBe(201);

      const create = (token: string) =>
        t.request({
          method: 'POST',
          url: '/api/v1/webhooks',
          token,
          body: { url: 'https://example.com/hook', eventTypes: ['crm.*'] },
        });
      // example.com resolves to a public address when DNS works; a refusal counts against the budget too
      await create(a.adminToken);
      await create(a.adminToken);
      const third = await create(a.adminToken);
      expect({ status: third.status, code: third.body.code }).toEqual({
        status: 429,
        code: 'PLX_RATE_LIMITED',
      });
      // reads are not management calls
      expect((await t.request({ method: 'GET', url: '/api/v1/webhooks', token: a.adminToken })).status).toBe(
        200,
      );
      expect((await create(b.adminToken)).status).not.toBe(429);
    });
  },
);
