import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_ENGINES } from '../../../test/engines.js';
import { until } from '../../../test/event-bus.js';
import { eventEngineSettings, removeEventEngineState } from '../../../test/event-engine-app.js';
import { createTestApp, type TestApp } from '../../../test/harness.js';
import { systemContext, toTenantRef } from '../../context.js';
import type { EventDelivery, Subscription } from '../events/index.js';

/**
 * Idle consumers look for events once a minute here: an event that arrives at all was
 * handed over at its commit (the wake-up on the event log, the outbox relay on Redis), and
 * no scheduler runs the outbox's crash sweep in a test app.
 */
const SLOW_POLL_MS = 60_000;

for (const engine of EVENT_ENGINES)
  describe(`tenant lifecycle: audit records and core events (${engine.name})`, () => {
    let t: TestApp;
    let root: string;
    let rootId: string;
    const prefix = `plx-tenant-ev-${randomBytes(4).toString('hex')}`;
    // slugs of their own: on Redis the rate-limit keys (tenant:{slug}:…) are shared with other runs
    const slug = (name: string) => `${name}-${prefix.slice(-8)}`;
    const platform: EventDelivery[] = [];
    const tenantTopics: EventDelivery[] = [];
    const seenByB: EventDelivery[] = [];
    const subs: Subscription[] = [];
    let b: Awaited<ReturnType<TestApp['createTenant']>>;
    let aId: string;
    beforeAll(async () => {
      t = await createTestApp(engine.database, {
        eventsPollIntervalMs: SLOW_POLL_MS,
        ...eventEngineSettings(engine, prefix),
      });
      root = await t.adminToken();
      rootId = (await t.request({ method: 'GET', url: '/api/v1/auth/me', token: root })).body.id;
      const bus = t.app.services.events;
      subs.push(
        await bus.subscribe({
          group: 'test.platform',
          topics: ['global.core.tenant.*'],
          handler: async (d) => void platform.push(d),
        }),
        await bus.subscribe({
          group: 'test.tenant-topics',
          // `*` matches `global` too: this observer keeps the tenants' own topics
          topics: ['*.core.tenant.*'],
          handler: async (d) => {
            if (!d.topic.startsWith('global.')) tenantTopics.push(d);
          },
        }),
      );
      b = await t.createTenant(slug('beta'));
      const ctxB = systemContext('test', toTenantRef(await t.app.services.tenants.get(b.id)));
      subs.push(
        await bus.subscribeTenant(ctxB, {
          group: 'test.beta-own',
          topics: [`${b.slug}.*`],
          handler: async (d) => void seenByB.push(d),
        }),
      );
    });
    afterAll(async () => {
      for (const s of subs) await s.close();
      await t?.close();
      await removeEventEngineState(engine, prefix);
    });

    const auditOf = async (tenantId: string, action: string) =>
      t.app.services.audit.list(
        systemContext('test', toTenantRef(await t.app.services.tenants.get(tenantId))),
        { limit: 10, offset: 0, action },
      );
    const eventOf = (list: EventDelivery[], type: string, tenantId: string) =>
      list.find(
        (d) =>
          d.event.type === type &&
          (d.event.tenantid === tenantId ||
            (d.event.data as { tenant?: { id: string } }).tenant?.id === tenantId),
      );
    const arrived = (list: EventDelivery[], type: string, tenantId: string) =>
      until(() => eventOf(list, type, tenantId) !== undefined, `${type} of ${tenantId}`);
    /** On Redis the events wait in the outbox: relayed at the commit, none of these is left in it. */
    const outboxLeft = async () =>
      Number(
        (
          await sql<{ n: number }>`select count(*)::int as n from core.event_outbox
            where envelope->>'type' like 'core.tenant.%'`.execute(t.app.database.db)
        ).rows[0]?.n,
      );
    const actor = () => ({ type: 'user', id: rootId });

    it('creating a tenant records tenant.created by the super admin and raises core.tenant.created on both topics', async () => {
      const created = await t.request({
        method: 'POST',
        url: '/api/v1/tenants',
        token: root,
        body: { slug: slug('acme'), name: 'Acme' },
      });
      expect(created.status).toBe(201);
      expect(await outboxLeft()).toBe(0);
      aId = created.body.id;
      const [record, ...more] = await auditOf(aId, 'tenant.created');
      expect(more).toEqual([]);
      expect(record).toMatchObject({
        actorType: 'user',
        actorId: rootId,
        credential: 'access_token',
        ip: '127.0.0.1',
        targetType: 'tenant',
        targetId: aId,
        data: { slug: slug('acme'), name: 'Acme' },
      });
      expect(record?.requestId).toEqual(expect.any(String));

      await arrived(tenantTopics, 'core.tenant.created', aId);
      await arrived(platform, 'core.tenant.created', aId);
      const own = eventOf(tenantTopics, 'core.tenant.created', aId);
      expect(own?.topic).toBe(`${slug('acme')}.core.tenant.created`);
      expect(own?.event).toMatchObject({
        source: '/plexica/core',
        subject: `tenant/${aId}`,
        tenantid: aId,
        data: { id: aId, slug: slug('acme'), name: 'Acme', actor: actor() },
      });
      const global = eventOf(platform, 'core.tenant.created', aId);
      expect(global?.topic).toBe('global.core.tenant.created');
      expect(global?.event).not.toHaveProperty('tenantid');
      expect(global?.event.data).toEqual({
        id: aId,
        slug: slug('acme'),
        name: 'Acme',
        tenant: { id: aId, slug: slug('acme') },
        actor: actor(),
      });
      // and in the tenant's own event log, as the super admin sees it
      const log = await t.request({
        method: 'GET',
        url: '/api/v1/events?type=core.tenant.created',
        token: root,
        tenant: aId,
      });
      expect(log.body.data.map((e: { entityId: string }) => e.entityId)).toEqual([aId]);
    });

    it('suspending and resuming record tenant.suspended / tenant.resumed and raise their events', async () => {
      for (const [status, action] of [
        ['suspended', 'tenant.suspended'],
        ['active', 'tenant.resumed'],
      ] as const) {
        const res = await t.request({
          method: 'PATCH',
          url: `/api/v1/tenants/${aId}`,
          token: root,
          body: { status },
        });
        expect(res.status).toBe(200);
        expect(await outboxLeft()).toBe(0);
        const [record] = await auditOf(aId, action);
        expect(record).toMatchObject({ actorId: rootId, credential: 'access_token', targetId: aId });
        const type = `core.${action}`;
        await arrived(tenantTopics, type, aId);
        await arrived(platform, type, aId);
        const changes = { status: { from: status === 'active' ? 'suspended' : 'active', to: status } };
        expect(eventOf(tenantTopics, type, aId)?.event.data).toEqual({ id: aId, changes, actor: actor() });
        expect(eventOf(platform, type, aId)?.event.data).toMatchObject({
          changes,
          tenant: { id: aId, slug: slug('acme') },
          actor: actor(),
        });
      }
    });

    it('a rename raises core.tenant.updated; a PATCH that changes nothing raises nothing', async () => {
      const rename = () =>
        t.request({ method: 'PATCH', url: `/api/v1/tenants/${aId}`, token: root, body: { name: 'Acme 2' } });
      expect((await rename()).status).toBe(200);
      await arrived(platform, 'core.tenant.updated', aId);
      expect(eventOf(platform, 'core.tenant.updated', aId)?.event.data).toMatchObject({
        changes: { name: { from: 'Acme', to: 'Acme 2' } },
      });
      expect((await rename()).status).toBe(200);
      expect((await auditOf(aId, 'tenant.updated')).length).toBe(1);
    });

    it('deleting records tenant.deleted in the log it keeps until the purge and raises core.tenant.deleted on global only', async () => {
      const res = await t.request({ method: 'DELETE', url: `/api/v1/tenants/${aId}`, token: root });
      expect(res.status).toBe(200);
      expect(await outboxLeft()).toBe(0);
      const [record] = await auditOf(aId, 'tenant.deleted');
      expect(record).toMatchObject({
        actorId: rootId,
        credential: 'access_token',
        targetId: aId,
        data: { slug: slug('acme'), purgeAfter: res.body.purgeAfter },
      });
      await arrived(platform, 'core.tenant.deleted', aId);
      expect(eventOf(platform, 'core.tenant.deleted', aId)?.event.data).toMatchObject({
        id: aId,
        tenant: { id: aId, slug: slug('acme') },
        actor: actor(),
      });
      // a later event of another tenant is through: the tenant topic had its chance
      const marker = await t.request({
        method: 'PATCH',
        url: `/api/v1/tenants/${b.id}`,
        token: root,
        body: { name: 'Beta renamed' },
      });
      expect(marker.status).toBe(200);
      await arrived(tenantTopics, 'core.tenant.updated', b.id);
      expect(tenantTopics.filter((d) => d.event.type === 'core.tenant.deleted')).toEqual([]);
      // deleting again is a state conflict and records nothing more
      const again = await t.request({ method: 'DELETE', url: `/api/v1/tenants/${aId}`, token: root });
      expect({ status: again.status, code: again.body.code }).toEqual({
        status: 409,
        code: 'PLX_TENANT_STATE_CONFLICT',
      });
      expect((await auditOf(aId, 'tenant.deleted')).length).toBe(1);
    });

    it("tenant B's subscription gets B's lifecycle events and never A's", async () => {
      await until(() => seenByB.some((d) => d.event.type === 'core.tenant.updated'), "B's own rename");
      expect(seenByB.length).toBeGreaterThan(0);
      for (const d of seenByB) {
        expect(d.topic.startsWith(`${b.slug}.`)).toBe(true);
        expect(d.event.tenantid).toBe(b.id);
      }
      const ctxB = systemContext('test', toTenantRef(await t.app.services.tenants.get(b.id)));
      for (const topics of [['*.core.tenant.*'], ['global.core.tenant.*'], [`${slug('acme')}.*`]])
        await expect(
          t.app.services.events.subscribeTenant(ctxB, {
            group: 'test.beta-wide',
            topics,
            handler: async () => {},
          }),
        ).rejects.toMatchObject({ code: 'PLX_EVENT_TOPIC_FORBIDDEN' });
    });
  });
