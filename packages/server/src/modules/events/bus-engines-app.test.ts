import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_ENGINES } from '../../../test/engines.js';
import { until } from '../../../test/event-bus.js';
import { eventEngineSettings, removeEventEngineState } from '../../../test/event-engine-app.js';
import { createTestApp, type TestApp } from '../../../test/harness.js';
import type { EventDelivery, Subscription } from './service.js';

// the contract suite tests the drivers alone; this runs the whole app on the engines outside the database
const OUTSIDE = EVENT_ENGINES.filter((e) => e.driver !== 'postgres');

describe.skipIf(OUTSIDE.length === 0)('the app with its event bus outside the database', () => {
  for (const engine of OUTSIDE)
    describe(engine.name, () => {
      let t: TestApp;
      let sub: Subscription;
      const got: EventDelivery[] = [];
      const prefix = `plx-app-${randomBytes(4).toString('hex')}`;
      beforeAll(async () => {
        t = await createTestApp(engine.database, {
          eventsPollIntervalMs: 50,
          ...eventEngineSettings(engine, prefix),
        });
        sub = await t.app.services.events.subscribe({
          group: 'test.observer',
          topics: ['*.*'],
          handler: async (d) => void got.push(d),
        });
      });
      afterAll(async () => {
        await sub?.close();
        await t?.close();
        await removeEventEngineState(engine, prefix);
      });

      it('carries app events and core lifecycle events from the API to a subscriber, and reports the engine healthy', async () => {
        const a = await t.createTenant('acme');
        const app = await t.request({
          method: 'POST',
          url: '/api/v1/apps',
          token: a.adminToken,
          body: { name: 'CRM' },
        });
        expect(app.status).toBe(201);
        const published = await t.request({
          method: 'POST',
          url: `/api/v1/apps/${app.body.id}/events`,
          token: a.adminToken,
          body: {
            category: 'crm',
            type: 'deal.created',
            entityType: 'deal',
            entityId: 'd-1',
            data: { n: 1 },
          },
        });
        expect(published.status).toBe(201);
        await until(() => got.some((d) => d.event.id === published.body.id), 'the app event');
        expect(got.find((d) => d.event.id === published.body.id)?.topic).toBe('acme.crm.deal.created');
        // raised from the audit record inside the request's transaction: through the outbox
        const user = await t.request({
          method: 'POST',
          url: '/api/v1/users',
          token: a.adminToken,
          body: { email: 'new@acme.test', password: 'a-long-password-1', displayName: 'New' },
        });
        expect(user.status).toBe(201);
        await until(
          () =>
            got.some((d) => d.topic === 'acme.core.user.created' && d.event.subject?.includes(user.body.id)),
          'core.user.created',
        );
        const health = await t.request({ method: 'GET', url: '/health' });
        expect(health.body.checks.events.status).toBe('up');
      });
    });
});
