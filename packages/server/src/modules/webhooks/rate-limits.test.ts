import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASES } from '../../../test/engines.js';
import { createTestApp, type TestApp } from '../../../test/harness.js';
import { toTenantRef } from '../../context.js';

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

// a super admin sets a tenant's own budgets in its settings; the tenant's admins cannot
describe.skipIf(DATABASES.length === 0)(
  'per-tenant overrides of the events and webhook management limits',
  () => {
    let t: TestApp;
    let root: string;
    const tenants: Record<
      'small' | 'plain' | 'large',
      Awaited<ReturnType<TestApp['createTenant']>>
    > = {} as never;
    const DEFAULT = 5;
    beforeAll(async () => {
      t = await createTestApp(DATABASES[0] ?? 'pglite', {
        eventsPublishRateLimit: DEFAULT,
        webhooksManageRateLimit: DEFAULT,
      });
      root = await t.adminToken();
      for (const name of ['small', 'plain', 'large'] as const)
        tenants[name] = await t.createTenant(`lim-${name}`);
    });
    afterAll(async () => {
      await t?.close();
    });
    const patch = (tenantId: string, settings: Record<string, unknown>, token = root) =>
      t.request({ method: 'PATCH', url: `/api/v1/tenants/${tenantId}`, token, body: { settings } });
    /** Statuses of `n` publishes by the tenant's admin. */
    const publishes = async (tenant: { adminToken: string }, n: number) => {
      const app = await t.request({
        method: 'POST',
        url: '/api/v1/apps',
        token: tenant.adminToken,
        body: { name: `App ${Math.random()}` },
      });
      const statuses: number[] = [];
      for (let i = 0; i < n; i++)
        statuses.push(
          (
            await t.request({
              method: 'POST',
              url: `/api/v1/apps/${app.body.id}/events`,
              token: tenant.adminToken,
              body: { category: 'crm', type: 'x.y' },
            })
          ).status,
        );
      return statuses;
    };
    /** Statuses of `n` webhook management calls (deleting an endpoint that is not there still counts). */
    const manages = async (tenant: { adminToken: string }, n: number) => {
      const statuses: number[] = [];
      for (let i = 0; i < n; i++)
        statuses.push(
          (
            await t.request({
              method: 'DELETE',
              url: '/api/v1/webhooks/00000000-0000-4000-8000-000000000000',
              token: tenant.adminToken,
            })
          ).status,
        );
      return statuses;
    };

    it('refuses bad overrides with the field named, and keeps the settings as they were', async () => {
      for (const value of [0, -1, 1.5, 100_000_001, '3']) {
        const res = await patch(tenants.small.id, { rateLimitEventsPublish: value });
        expect({ status: res.status, code: res.body.code }).toEqual({ status: 400, code: 'PLX_VALIDATION' });
        expect(JSON.stringify(res.body.errors)).toContain('rateLimitEventsPublish');
      }
      const unknown = await patch(tenants.small.id, { rateLimitEverything: 3 });
      expect({ status: unknown.status, code: unknown.body.code }).toEqual({
        status: 400,
        code: 'PLX_VALIDATION',
      });
      const tenant = await t.request({
        method: 'GET',
        url: `/api/v1/tenants/${tenants.small.id}`,
        token: root,
      });
      expect(tenant.body.settings).toEqual({});
    });

    it("a tenant admin cannot change its tenant's limits", async () => {
      const res = await patch(
        tenants.small.id,
        { rateLimitEventsPublish: 1_000_000 },
        tenants.small.adminToken,
      );
      expect({ status: res.status, code: res.body.code }).toEqual({
        status: 403,
        code: 'PLX_PERMISSION_DENIED',
      });
      expect((await t.app.services.tenants.get(tenants.small.id)).settings).toEqual({});
    });

    it('a tenant with an override of 3 gets 429 on the 4th call, one of 8 goes past the default, another keeps the default', async () => {
      const set = await patch(tenants.small.id, { rateLimitEventsPublish: 3, rateLimitWebhooksManage: 3 });
      expect(set.status).toBe(200);
      expect(set.body.settings).toEqual({ rateLimitEventsPublish: 3, rateLimitWebhooksManage: 3 });
      expect(
        (await patch(tenants.large.id, { rateLimitEventsPublish: 8, rateLimitWebhooksManage: 8 })).status,
      ).toBe(200);

      expect(await publishes(tenants.small, 4)).toEqual([201, 201, 201, 429]);
      expect(await manages(tenants.small, 4)).toEqual([404, 404, 404, 429]);
      expect(await publishes(tenants.plain, DEFAULT + 1)).toEqual([...Array(DEFAULT).fill(201), 429]);
      expect(await manages(tenants.plain, DEFAULT + 1)).toEqual([...Array(DEFAULT).fill(404), 429]);
      expect(await publishes(tenants.large, 9)).toEqual([...Array(8).fill(201), 429]);
      expect(await manages(tenants.large, 9)).toEqual([...Array(8).fill(404), 429]);

      // the change is in the tenant's audit log, by the super admin
      const [record] = await t.app.services.audit.list(
        {
          traceId: 'test',
          principal: null,
          tenant: toTenantRef(await t.app.services.tenants.get(tenants.small.id)),
        },
        { limit: 5, offset: 0, action: 'tenant.updated' },
      );
      expect(record?.data).toEqual({
        changes: {
          rateLimitEventsPublish: { from: null, to: 3 },
          rateLimitWebhooksManage: { from: null, to: 3 },
        },
      });
    });

    it('null takes an override away: the default applies again', async () => {
      const tenant = await t.createTenant('lim-reset');
      expect((await patch(tenant.id, { rateLimitEventsPublish: 2 })).status).toBe(200);
      expect(await publishes(tenant, 3)).toEqual([201, 201, 429]);
      const cleared = await patch(tenant.id, { rateLimitEventsPublish: null });
      expect(cleared.status).toBe(200);
      expect(cleared.body.settings).toEqual({});
      // the same window goes on counting (3 so far), now against the default of 5
      expect(await publishes(tenant, 3)).toEqual([201, 201, 429]);
    });
  },
);
