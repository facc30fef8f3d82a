import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASES } from '../../../test/engines.js';
import { until } from '../../../test/event-bus.js';
import { createTestApp, type TestApp } from '../../../test/harness.js';

interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

/**
 * A local receiver: `/fail/{n}/…` fails n times, `/gone` answers 410, `/slow-down` 429 + Retry-After once,
 * `/nul` a body with a NUL byte (which PostgreSQL text cannot hold).
 */
async function receiver() {
  const received: Received[] = [];
  const counts = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ path, headers: req.headers, body, at: Date.now() });
      const n = (counts.get(path) ?? 0) + 1;
      counts.set(path, n);
      const fail = /^\/fail\/(\d+)/.exec(path);
      if (fail && n <= Number(fail[1])) return res.writeHead(500).end('boom '.repeat(2000));
      if (path === '/gone') return res.writeHead(410).end();
      if (path === '/always-fails') return res.writeHead(503).end();
      if (path === '/slow-down' && n === 1) return res.writeHead(429, { 'retry-after': '2' }).end();
      if (path === '/nul') return res.writeHead(200).end('before\u0000after');
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    received,
    host,
    url: (p: string) => `http://${host}${p}`,
    close: () => new Promise((r) => server.close(r)),
  };
}

for (const kind of DATABASES)
  describe(`webhooks, Standard Webhooks 1.0 (${kind})`, () => {
    let t: TestApp;
    let rx: Awaited<ReturnType<typeof receiver>>;
    let a: Awaited<ReturnType<TestApp['createTenant']>>;
    let b: Awaited<ReturnType<TestApp['createTenant']>>;
    let appId: string;
    beforeAll(async () => {
      rx = await receiver();
      t = await createTestApp(kind, {
        eventsPollIntervalMs: 50,
        jobsPollIntervalSeconds: 1,
        webhooksRetrySchedule: ['0', '0', '0', '0'],
        webhooksAutoDisableAfter: 100,
        outboundAllowHosts: [rx.host],
      });
      await t.app.start();
      a = await t.createTenant('acme');
      b = await t.createTenant('beta');
      appId = (
        await t.request({ method: 'POST', url: '/api/v1/apps', token: a.adminToken, body: { name: 'CRM' } })
      ).body.id;
    });
    afterAll(async () => {
      await t?.close();
      await rx?.close();
    });
    const endpoint = async (token: string, path: string, eventTypes: string[], url = '/api/v1/webhooks') => {
      const res = await t.request({ method: 'POST', url, token, body: { url: rx.url(path), eventTypes } });
      expect(res.status).toBe(201);
      return res.body as { id: string; secret: string };
    };
    const publish = (type: string, data: unknown = {}, token = a.adminToken, app = appId) =>
      t.request({
        method: 'POST',
        url: `/api/v1/apps/${app}/events`,
        token,
        body: { category: 'crm', type, data },
      });
    const at = (path: string) => rx.received.filter((r) => r.path === path);

    it('signs with webhook-id, webhook-timestamp and v1 HMAC that standardwebhooks verifies', async () => {
      const ep = await endpoint(a.adminToken, '/ok', ['crm.deal.*']);
      expect(ep.secret).toMatch(/^whsec_/);
      const sent = await publish('deal.won', { amount: 3 });
      await until(() => at('/ok').length === 1, 'the delivery');
      const got = at('/ok')[0]!;
      const payload = new Webhook(ep.secret).verify(got.body, {
        'webhook-id': String(got.headers['webhook-id']),
        'webhook-timestamp': String(got.headers['webhook-timestamp']),
        'webhook-signature': String(got.headers['webhook-signature']),
      }) as { id: string; type: string; data: unknown };
      expect(payload).toMatchObject({ id: sent.body.id, type: 'crm.deal.won', data: { amount: 3 } });
      expect(got.headers['webhook-id']).toBe(sent.body.id);
      await until(async () => {
        const log = await t.request({
          method: 'GET',
          url: `/api/v1/webhooks/${ep.id}/deliveries`,
          token: a.adminToken,
        });
        return log.body[0]?.status === 'succeeded';
      }, 'the delivery log');
      const log = await t.request({
        method: 'GET',
        url: `/api/v1/webhooks/${ep.id}/deliveries`,
        token: a.adminToken,
      });
      expect(log.body[0].attempts[0]).toMatchObject({
        attempt: 1,
        responseStatus: 200,
        responseBody: 'ok',
        error: null,
      });
      expect(log.body[0].attempts[0].requestHeaders['webhook-id']).toBe(sent.body.id);
      // B sees neither the endpoint nor its deliveries
      expect(
        (await t.request({ method: 'GET', url: `/api/v1/webhooks/${ep.id}`, token: b.adminToken })).body.code,
      ).toBe('PLX_WEBHOOK_NOT_FOUND');
      expect(
        (await t.request({ method: 'GET', url: `/api/v1/webhooks/${ep.id}/deliveries`, token: b.adminToken }))
          .status,
      ).toBe(404);
      expect((await t.request({ method: 'GET', url: '/api/v1/webhooks', token: b.adminToken })).body).toEqual(
        [],
      );
    });

    it("retries a failing receiver, keeps each attempt, and B's endpoints never get A's events", async () => {
      await endpoint(b.adminToken, '/beta-all', ['*']);
      const ep = await endpoint(a.adminToken, '/fail/3/x', ['crm.invoice.*']);
      await publish('invoice.sent');
      await until(() => at('/fail/3/x').length === 4, 'three failures and a success', 30_000);
      await until(async () => {
        const log = await t.request({
          method: 'GET',
          url: `/api/v1/webhooks/${ep.id}/deliveries`,
          token: a.adminToken,
        });
        return log.body[0]?.status === 'succeeded';
      }, 'success recorded');
      const log = await t.request({
        method: 'GET',
        url: `/api/v1/webhooks/${ep.id}/deliveries`,
        token: a.adminToken,
      });
      expect(log.body[0].attempts.map((x: { responseStatus: number }) => x.responseStatus)).toEqual([
        500, 500, 500, 200,
      ]);
      expect(log.body[0].attempts[0].responseBody.length).toBe(4096);
      const ids = new Set(at('/fail/3/x').map((r) => r.headers['webhook-id']));
      expect(ids.size).toBe(1);
      // B's catch-all endpoint gets B's own events only
      const tenants = at('/beta-all').map((r) => (JSON.parse(r.body) as { tenantid: string }).tenantid);
      expect(tenants.every((id) => id === b.id)).toBe(true);
      expect(at('/beta-all').some((r) => r.body.includes('invoice.sent'))).toBe(false);
    });

    it('disables an endpoint that answers 410 Gone, and honours Retry-After', async () => {
      const gone = await endpoint(a.adminToken, '/gone', ['crm.gone.*']);
      await publish('gone.once');
      await until(async () => {
        const e = await t.request({ method: 'GET', url: `/api/v1/webhooks/${gone.id}`, token: a.adminToken });
        return e.body.status === 'disabled';
      }, 'the 410');
      await publish('gone.twice');
      await new Promise((r) => setTimeout(r, 1500));
      expect(at('/gone').length).toBe(1);
      await endpoint(a.adminToken, '/slow-down', ['crm.slow.*']);
      await publish('slow.please');
      await until(() => at('/slow-down').length === 2, 'the retry after Retry-After', 30_000);
      const [first, second] = at('/slow-down');
      expect(second!.at - first!.at).toBeGreaterThanOrEqual(2000);
    });

    it('sends both signatures during a rotation overlap', async () => {
      const ep = await endpoint(a.adminToken, '/rotated', ['crm.rotate.*']);
      const rotated = await t.request({
        method: 'POST',
        url: `/api/v1/webhooks/${ep.id}/rotate-secret`,
        token: a.adminToken,
        body: { overlapSeconds: 3600 },
      });
      expect(rotated.status).toBe(200);
      expect(rotated.body.secret).not.toBe(ep.secret);
      expect(rotated.body.previousSecretUntil).not.toBeNull();
      await publish('rotate.now');
      await until(() => at('/rotated').length === 1, 'the delivery');
      const got = at('/rotated')[0]!;
      const headers = {
        'webhook-id': String(got.headers['webhook-id']),
        'webhook-timestamp': String(got.headers['webhook-timestamp']),
        'webhook-signature': String(got.headers['webhook-signature']),
      };
      expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
      for (const secret of [ep.secret, rotated.body.secret])
        expect(new Webhook(secret).verify(got.body, headers)).toBeTruthy();
    });

    it('auto-disables after 100 consecutive failures, with an event and an audit entry; redelivers and recovers', async () => {
      const ep = await endpoint(a.adminToken, '/always-fails', ['crm.doomed.*']);
      await t.app.database.db
        .updateTable('core.webhook_endpoints')
        .set({ consecutive_failures: 99 })
        .where('id', '=', ep.id)
        .execute();
      await publish('doomed.event');
      await until(async () => {
        const e = await t.request({ method: 'GET', url: `/api/v1/webhooks/${ep.id}`, token: a.adminToken });
        return e.body.status === 'disabled';
      }, 'the auto-disable');
      const e = await t.request({ method: 'GET', url: `/api/v1/webhooks/${ep.id}`, token: a.adminToken });
      expect(e.body.disabledReason).toBe('100 consecutive failures');
      const audit = await t.request({
        method: 'GET',
        url: '/api/v1/audit-events?action=webhook_endpoint.disabled',
        token: a.adminToken,
      });
      expect(audit.body.map((x: { targetId: string }) => x.targetId)).toContain(ep.id);
      const seen: string[] = [];
      const sub = await t.app.services.events.subscribe({
        group: `disabled-${ep.id}`,
        topics: ['acme.webhooks.endpoint.disabled'],
        from: 'earliest',
        handler: async (d) => void seen.push((d.event.data as { id: string }).id),
      });
      await until(() => seen.includes(ep.id), 'the disabled event');
      await sub.close();
      // re-enabled, a failed delivery is sent again by hand, and a range is recovered
      await t.request({
        method: 'PATCH',
        url: `/api/v1/webhooks/${ep.id}`,
        token: a.adminToken,
        body: { status: 'active' },
      });
      const log = await t.request({
        method: 'GET',
        url: `/api/v1/webhooks/${ep.id}/deliveries`,
        token: a.adminToken,
      });
      const failedId = log.body[0].id;
      const before = at('/always-fails').length;
      const again = await t.request({
        method: 'POST',
        url: `/api/v1/webhooks/${ep.id}/deliveries/${failedId}/redeliver`,
        token: a.adminToken,
      });
      expect(again.status).toBe(202);
      await until(() => at('/always-fails').length > before, 'the redelivery');
      const recover = await t.request({
        method: 'POST',
        url: `/api/v1/webhooks/${ep.id}/recover`,
        token: a.adminToken,
        body: { since: new Date(Date.now() - 3_600_000).toISOString() },
      });
      expect(recover.status).toBe(202);
      expect(recover.body.redelivered).toBeGreaterThanOrEqual(1);
      const future = await t.request({
        method: 'POST',
        url: `/api/v1/webhooks/${ep.id}/recover`,
        token: a.adminToken,
        body: { since: new Date(Date.now() + 3_600_000).toISOString() },
      });
      expect({ status: future.status, code: future.body.code }).toEqual({
        status: 400,
        code: 'PLX_WEBHOOK_RANGE_INVALID',
      });
      const foreign = await t.request({
        method: 'POST',
        url: `/api/v1/webhooks/${ep.id}/deliveries/${failedId}/redeliver`,
        token: b.adminToken,
      });
      expect(foreign.body.code).toBe('PLX_WEBHOOK_NOT_FOUND');
    });

    it('refuses bad endpoints precisely (SSRF, scheme, credentials, length, filters, apps)', async () => {
      const cases: [unknown, number, string, string?][] = [
        [{ url: 'https://169.254.169.254/latest', eventTypes: ['crm.*'] }, 400, 'PLX_OUTBOUND_URL_FORBIDDEN'],
        [{ url: 'https://10.1.2.3/hook', eventTypes: ['crm.*'] }, 400, 'PLX_OUTBOUND_URL_FORBIDDEN'],
        [{ url: 'http://example.com/hook', eventTypes: ['crm.*'] }, 400, 'PLX_OUTBOUND_URL_FORBIDDEN'],
        [
          { url: 'https://user:pw@example.com/hook', eventTypes: ['crm.*'] },
          400,
          'PLX_OUTBOUND_URL_FORBIDDEN',
        ],
        [{ url: 'https://localhost/hook', eventTypes: ['crm.*'] }, 400, 'PLX_OUTBOUND_URL_FORBIDDEN'],
        [
          { url: `https://example.com/${'a'.repeat(10 * 1024)}`, eventTypes: ['crm.*'] },
          400,
          'PLX_VALIDATION',
        ],
        [{ url: rx.url('/x'), eventTypes: ['crm'] }, 400, 'PLX_WEBHOOK_FILTER_NEVER_MATCHES'],
        [{ url: rx.url('/x'), eventTypes: ['crm.**'] }, 400, 'PLX_EVENT_PATTERN_INVALID'],
        [{ url: rx.url('/x'), eventTypes: [] }, 400, 'PLX_VALIDATION'],
      ];
      for (const [body, status, code] of cases) {
        const res = await t.request({ method: 'POST', url: '/api/v1/webhooks', token: a.adminToken, body });
        expect({ status: res.status, code: res.body.code }).toEqual({ status, code });
      }
      const foreignApp = await t.request({
        method: 'POST',
        url: `/api/v1/apps/${appId}/webhooks`,
        token: b.adminToken,
        body: { url: rx.url('/x'), eventTypes: ['crm.*'] },
      });
      expect({ status: foreignApp.status, code: foreignApp.body.code }).toEqual({
        status: 404,
        code: 'PLX_APP_NOT_FOUND',
      });
      expect(
        (await t.request({ method: 'GET', url: '/api/v1/webhooks', token: a.adminToken })).body.length,
      ).toBe(6);
    });

    it("a success clears the endpoint's failure count; a NUL in the answer is kept as U+FFFD", async () => {
      const ep = await endpoint(a.adminToken, '/nul', ['crm.nul.*']);
      await t.app.database.db
        .updateTable('core.webhook_endpoints')
        .set({ consecutive_failures: 5 })
        .where('id', '=', ep.id)
        .execute();
      await publish('nul.sent');
      const deliveries = () =>
        t.request({ method: 'GET', url: `/api/v1/webhooks/${ep.id}/deliveries`, token: a.adminToken });
      await until(async () => (await deliveries()).body[0]?.status === 'succeeded', 'the delivery');
      expect((await deliveries()).body[0].attempts[0]).toMatchObject({
        responseStatus: 200,
        responseBody: 'before\uFFFDafter',
      });
      const after = await t.request({ method: 'GET', url: `/api/v1/webhooks/${ep.id}`, token: a.adminToken });
      expect(after.body.consecutiveFailures).toBe(0);
    });
  });

describe.skipIf(DATABASES.length === 0)('webhook SSRF guard at each delivery (DNS rebinding)', () => {
  let t: TestApp;
  // hooks.example.test is public when the endpoint is created, then moves to 127.0.0.1
  let rebound = false;
  const resolveHost = async (hostname: string) =>
    hostname === 'hooks.example.test'
      ? [{ address: rebound ? '127.0.0.1' : '93.184.216.34', family: 4 }]
      : [{ address: '127.0.0.1', family: 4 }];
  beforeAll(async () => {
    t = await createTestApp(
      DATABASES[0] ?? 'pglite',
      { eventsPollIntervalMs: 50, jobsPollIntervalSeconds: 1, webhooksRetrySchedule: ['0'] },
      { resolveHost },
    );
    await t.app.start();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('refuses a delivery to a name that resolves to loopback after the endpoint was created', async () => {
    const a = await t.createTenant('acme');
    const created = await t.request({
      method: 'POST',
      url: '/api/v1/webhooks',
      token: a.adminToken,
      body: { url: 'https://hooks.example.test/in', eventTypes: ['crm.*'] },
    });
    expect(created.status).toBe(201);
    rebound = true;
    const appId = (
      await t.request({ method: 'POST', url: '/api/v1/apps', token: a.adminToken, body: { name: 'A' } })
    ).body.id;
    await t.request({
      method: 'POST',
      url: `/api/v1/apps/${appId}/events`,
      token: a.adminToken,
      body: { category: 'crm', type: 'deal.created' },
    });
    const deliveries = () =>
      t.request({
        method: 'GET',
        url: `/api/v1/webhooks/${created.body.id}/deliveries`,
        token: a.adminToken,
      });
    await until(async () => (await deliveries()).body[0]?.status === 'failed', 'the refused delivery');
    const [delivery] = (await deliveries()).body;
    expect(delivery.attempts).toHaveLength(2);
    for (const attempt of delivery.attempts) {
      expect(attempt.responseStatus).toBeNull();
      expect(attempt.error).toMatch(/^PLX_OUTBOUND_URL_FORBIDDEN/);
    }
  });
});

describe.skipIf(DATABASES.length === 0)('per-endpoint webhook rate limit', () => {
  let t: TestApp;
  let rx: Awaited<ReturnType<typeof receiver>>;
  beforeAll(async () => {
    rx = await receiver();
    t = await createTestApp(DATABASES[0] ?? 'pglite', {
      eventsPollIntervalMs: 50,
      jobsPollIntervalSeconds: 1,
      webhooksEndpointRateLimit: 2,
      outboundAllowHosts: [rx.host],
    });
    await t.app.start();
  });
  afterAll(async () => {
    await t?.close();
    await rx?.close();
  });

  it('spreads deliveries to one endpoint over the windows it allows, losing none', async () => {
    const a = await t.createTenant('acme');
    await t.request({
      method: 'POST',
      url: '/api/v1/webhooks',
      token: a.adminToken,
      body: { url: rx.url('/limited'), eventTypes: ['crm.*'] },
    });
    const appId = (
      await t.request({ method: 'POST', url: '/api/v1/apps', token: a.adminToken, body: { name: 'A' } })
    ).body.id;
    for (let i = 0; i < 6; i++)
      await t.request({
        method: 'POST',
        url: `/api/v1/apps/${appId}/events`,
        token: a.adminToken,
        body: { category: 'crm', type: 'deal.created', data: { i } },
      });
    await until(
      () => rx.received.filter((r) => r.path === '/limited').length === 6,
      'all six deliveries',
      30_000,
    );
    const times = rx.received.filter((r) => r.path === '/limited').map((r) => r.at);
    // at most 2 a second: six need three windows (unlimited, they arrive within milliseconds)
    expect(Math.max(...times) - Math.min(...times)).toBeGreaterThanOrEqual(1000);
  });
});
