import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASES } from '../../../test/engines.js';
import { until } from '../../../test/event-bus.js';
import { createTestApp, type TestApp } from '../../../test/harness.js';
import type { EventDelivery, Subscription } from './service.js';

for (const kind of DATABASES)
  describe(`apps and the platform events API (${kind})`, () => {
    let t: TestApp;
    let a: Awaited<ReturnType<TestApp['createTenant']>>;
    let b: Awaited<ReturnType<TestApp['createTenant']>>;
    let appId: string;
    let member: string;
    const got: EventDelivery[] = [];
    let sub: Subscription;
    beforeAll(async () => {
      t = await createTestApp(kind, { eventsPollIntervalMs: 50 });
      a = await t.createTenant('acme');
      b = await t.createTenant('beta');
      member = await t.createMember('acme', a.adminToken, 'member@acme.test');
      sub = await t.app.services.events.subscribe({
        group: 'test.observer',
        topics: ['*.*'],
        handler: async (d) => void got.push(d),
      });
    });
    afterAll(async () => {
      await sub?.close();
      await t?.close();
    });
    const post = (token: string, url: string, body: unknown, headers?: Record<string, string>) =>
      t.request({ method: 'POST', url, token, body, ...(headers && { headers }) });
    const get = (token: string, url: string) => t.request({ method: 'GET', url, token });

    it('registers apps per tenant; another tenant cannot see or use them', async () => {
      const created = await post(a.adminToken, '/api/v1/apps', { name: 'CRM', description: 'deals' });
      expect(created.status).toBe(201);
      appId = created.body.id;
      expect(created.body.source).toBe(`/apps/${appId}`);
      expect((await post(a.adminToken, '/api/v1/apps', { name: 'CRM' })).body.code).toBe(
        'PLX_APP_NAME_TAKEN',
      );
      expect((await get(a.adminToken, '/api/v1/apps')).body.map((x: { id: string }) => x.id)).toEqual([
        appId,
      ]);
      expect((await get(member, `/api/v1/apps/${appId}`)).status).toBe(200);
      expect((await post(member, '/api/v1/apps', { name: 'Nope' })).body.code).toBe('PLX_PERMISSION_DENIED');
      const patched = await t.request({
        method: 'PATCH',
        url: `/api/v1/apps/${appId}`,
        token: a.adminToken,
        body: { description: null },
      });
      expect(patched.body.description).toBeNull();
      expect((await get(b.adminToken, '/api/v1/apps')).body).toEqual([]);
      for (const url of [
        `/api/v1/apps/${appId}`,
        `/api/v1/apps/${appId}/events`,
        `/api/v1/events?appId=${appId}`,
      ]) {
        const res = await get(b.adminToken, url);
        expect(res.status).toBe(404);
        expect(res.body.code).toBe('PLX_APP_NOT_FOUND');
      }
      const foreign = await post(b.adminToken, `/api/v1/apps/${appId}/events`, {
        category: 'crm',
        type: 'x.y',
      });
      expect(foreign.status).toBe(404);
      expect(foreign.body.code).toBe('PLX_APP_NOT_FOUND');
      expect((await get(a.adminToken, '/api/v1/apps/not-a-uuid')).body.code).toBe('PLX_APP_NOT_FOUND');
    });

    it('publishes an app event to the log and the bus, with the app as source; a key returns the first', async () => {
      const body = {
        category: 'crm',
        type: 'deal.created',
        entityType: 'deal',
        entityId: 'd-1',
        data: { amount: 10 },
        idempotencyKey: 'deal-d-1',
      };
      const first = await post(a.adminToken, `/api/v1/apps/${appId}/events`, body);
      expect(first.status).toBe(201);
      expect(first.body).toMatchObject({ appId, type: 'crm.deal.created', category: 'crm', entityId: 'd-1' });
      const again = await post(a.adminToken, `/api/v1/apps/${appId}/events`, {
        ...body,
        data: { amount: 11 },
      });
      expect(again.status).toBe(200);
      expect(again.body.id).toBe(first.body.id);
      await until(() => got.some((d) => d.event.id === first.body.id), 'the bus event');
      const d = got.find((x) => x.event.id === first.body.id);
      expect(d?.topic).toBe('acme.crm.deal.created');
      expect(d?.event).toMatchObject({
        source: `/apps/${appId}`,
        subject: 'deal/d-1',
        tenantid: a.id,
        data: { amount: 10 },
      });
    });

    it('refuses bad events precisely and publishes nothing', async () => {
      const url = `/api/v1/apps/${appId}/events`;
      const before = (await get(a.adminToken, '/api/v1/events?limit=100')).body.data.length;
      const cases: [unknown, number, string][] = [
        [{ category: 'crm', type: 'Deal.Created' }, 400, 'PLX_EVENT_TYPE_INVALID'],
        [{ category: 'crm', type: 'deal..created' }, 400, 'PLX_EVENT_TYPE_INVALID'],
        [{ category: 'CRM', type: 'deal.created' }, 400, 'PLX_VALIDATION'],
        [
          { category: 'crm', type: 'deal.big', data: { s: 'x'.repeat(64 * 1024) } },
          413,
          'PLX_EVENT_TOO_LARGE',
        ],
        [{ category: 'crm', type: 'deal.created', extra: 1 }, 400, 'PLX_VALIDATION'],
      ];
      for (const [body, status, code] of cases) {
        const res = await post(a.adminToken, url, body);
        expect({ status: res.status, code: res.body.code }).toEqual({ status, code });
      }
      expect((await get(a.adminToken, '/api/v1/events?limit=100')).body.data.length).toBe(before);
      await new Promise((r) => setTimeout(r, 200));
      expect(got.some((x) => x.event.type === 'crm.deal.big')).toBe(false);
    });

    it('filters the log and pages it with a cursor; a filter that can never match is a 400', async () => {
      for (let i = 0; i < 5; i++)
        await post(a.adminToken, `/api/v1/apps/${appId}/events`, {
          category: 'billing',
          type: 'invoice.paid',
          entityType: 'invoice',
          entityId: `inv-${i}`,
          occurredAt: new Date(Date.UTC(2026, 10, 1 + i)).toISOString(),
        });
      const base = `/api/v1/apps/${appId}/events`;
      const page1 = await get(a.adminToken, `${base}?category=billing&limit=2`);
      expect(page1.body.data.map((e: { entityId: string }) => e.entityId)).toEqual(['inv-4', 'inv-3']);
      const page2 = await get(
        a.adminToken,
        `${base}?category=billing&limit=2&cursor=${page1.body.nextCursor}`,
      );
      expect(page2.body.data.map((e: { entityId: string }) => e.entityId)).toEqual(['inv-2', 'inv-1']);
      const page3 = await get(
        a.adminToken,
        `${base}?category=billing&limit=2&cursor=${page2.body.nextCursor}`,
      );
      expect(page3.body.data.map((e: { entityId: string }) => e.entityId)).toEqual(['inv-0']);
      expect(page3.body.nextCursor).toBeNull();
      const ranged = await get(
        a.adminToken,
        `${base}?type=billing.invoice.paid&from=2026-11-02T00:00:00Z&to=2026-11-03T00:00:00Z`,
      );
      expect(ranged.body.data.map((e: { entityId: string }) => e.entityId)).toEqual(['inv-2', 'inv-1']);
      const entity = await get(a.adminToken, `/api/v1/events?entityType=invoice&entityId=inv-3`);
      expect(entity.body.data.map((e: { entityId: string }) => e.entityId)).toEqual(['inv-3']);
      const bad: [string, string][] = [
        [`${base}?from=2026-11-03T00:00:00Z&to=2026-11-02T00:00:00Z`, 'PLX_EVENT_FILTER_NEVER_MATCHES'],
        [`${base}?category=crm&type=billing.invoice.paid`, 'PLX_EVENT_FILTER_NEVER_MATCHES'],
        [`${base}?type=NotAType`, 'PLX_EVENT_TYPE_INVALID'],
        [`${base}?cursor=bm9wZQ`, 'PLX_EVENT_CURSOR_INVALID'],
      ];
      for (const [url, code] of bad) {
        const res = await get(a.adminToken, url);
        expect({ status: res.status, code: res.body.code }).toEqual({ status: 400, code });
      }
      expect((await get(member, '/api/v1/events')).body.code).toBe('PLX_PERMISSION_DENIED');
      // B's log has none of A's events
      const theirs = await get(b.adminToken, '/api/v1/events?limit=100');
      expect(theirs.status).toBe(200);
      expect(theirs.body.data.every((e: { appId: string | null }) => e.appId === null)).toBe(true);
      expect(JSON.stringify(theirs.body)).not.toContain(appId);
    });

    it('raises core lifecycle events in the log and on the bus (core.user.created)', async () => {
      const created = await post(a.adminToken, '/api/v1/users', {
        email: 'new@acme.test',
        password: 'a-long-password-1',
        displayName: 'New',
      });
      expect(created.status).toBe(201);
      const log = await get(a.adminToken, '/api/v1/events?type=core.user.created');
      const mine = log.body.data.find((e: { entityId: string }) => e.entityId === created.body.id);
      expect(mine).toMatchObject({
        source: '/plexica/core',
        category: 'core',
        entityType: 'user',
        appId: null,
      });
      await until(() => got.some((d) => d.event.id === mine.id), 'the lifecycle event on the bus');
      expect(got.find((d) => d.event.id === mine.id)?.topic).toBe('acme.core.user.created');
      // and not in B's log
      const theirs = await get(b.adminToken, '/api/v1/events?type=core.user.created');
      expect(theirs.body.data.some((e: { entityId: string }) => e.entityId === created.body.id)).toBe(false);
    });

    it('purges log entries past the retention period', async () => {
      await t.app.database.db
        .updateTable('core.platform_events')
        .set({ created_at: new Date(Date.now() - 91 * 86_400_000) })
        .where('entity_id', '=', 'inv-0')
        .execute();
      expect(await t.app.services.eventLog.purge(90)).toBe(1);
      const left = await get(a.adminToken, `/api/v1/events?entityId=inv-0`);
      expect(left.body.data).toEqual([]);
    });
  });
