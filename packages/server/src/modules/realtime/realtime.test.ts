import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASES } from '../../../test/engines.js';
import { createTestApp, type TestApp } from '../../../test/harness.js';
import { connectStalled, type Frame, StreamClient } from '../../../test/stream-client.js';

const until = async (check: () => boolean, timeoutMs = 5000) => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

for (const kind of DATABASES)
  describe(`realtime stream (${kind})`, () => {
    let t: TestApp;
    let base: string;
    let a: Awaited<ReturnType<TestApp['createTenant']>>;
    let b: Awaited<ReturnType<TestApp['createTenant']>>;
    let member: string;
    let appA: string;
    let appB: string;
    const open: StreamClient[] = [];
    const connect = async (auth: { token?: string; ticket?: string }) => {
      const client = await StreamClient.connect(base, auth);
      open.push(client);
      return client;
    };
    const publish = async (token: string, appId: string, type: string, data: unknown = {}) => {
      const res = await t.request({
        method: 'POST',
        url: `/api/v1/apps/${appId}/events`,
        token,
        body: { category: 'crm', type, data },
      });
      expect(res.status).toBe(201);
      return res.body;
    };
    const subscribed = async (client: StreamClient, channel: string, types?: string[]) => {
      client.send({ type: 'subscribe', channel, ...(types && { types }) });
      return client.take((f) => f.type === 'subscribed' || f.type === 'error');
    };

    beforeAll(async () => {
      t = await createTestApp(kind, {
        eventsPollIntervalMs: 50,
        realtimePollIntervalMs: 200,
        realtimeHeartbeatMs: 60_000,
        realtimeMaxSubscriptions: 3,
        realtimeTicketSeconds: 1,
        realtimeSendBufferBytes: 256 * 1024,
      });
      base = (await t.app.start()) ?? '';
      a = await t.createTenant('acme');
      b = await t.createTenant('beta');
      member = await t.createMember('acme', a.adminToken, 'member@acme.test');
      appA = (
        await t.request({ method: 'POST', url: '/api/v1/apps', token: a.adminToken, body: { name: 'CRM' } })
      ).body.id;
      appB = (
        await t.request({ method: 'POST', url: '/api/v1/apps', token: b.adminToken, body: { name: 'CRM' } })
      ).body.id;
    });
    afterAll(async () => {
      for (const client of open) client.close();
      await t?.close();
    });

    it('refuses an upgrade without a credential, with a bad one, and a plain GET, before any upgrade', async () => {
      const none = await StreamClient.connect(base).catch((e: Frame) => e);
      expect(none.status).toBe(401);
      expect(none.body.code).toBe('PLX_AUTH_REQUIRED');
      const bad = await StreamClient.connect(base, { token: 'not-a-token' }).catch((e: Frame) => e);
      expect(bad.status).toBe(401);
      const plain = await t.request({ method: 'GET', url: '/api/v1/events/stream', token: a.adminToken });
      expect(plain.status).toBe(400);
      expect(plain.body.code).toBe('PLX_REALTIME_STREAM_EXPECTED');
    });

    it('counts failed credentials on the upgrade against the anonymous window (429 past it)', async () => {
      const strict = await createTestApp(kind, { rateLimitAnonymous: 3 });
      try {
        const url = (await strict.app.start()) ?? '';
        const statuses = [];
        for (let i = 0; i < 4; i += 1)
          statuses.push((await StreamClient.connect(url, { token: 'wrong' }).catch((e: Frame) => e)).status);
        expect(statuses).toEqual([401, 401, 401, 429]);
        const limited = await StreamClient.connect(url, { token: 'wrong' }).catch((e: Frame) => e);
        expect(limited.body.code).toBe('PLX_RATE_LIMITED');
        expect(limited.body.retryAfter).toBeGreaterThan(0);
      } finally {
        await strict.close();
      }
    });

    it('opens with a one-time ticket; a second use and an expired ticket are refused', async () => {
      const minted = await t.request({ method: 'POST', url: '/api/v1/events/stream/ticket', token: member });
      expect(minted.status).toBe(201);
      const client = await connect({ ticket: minted.body.ticket });
      expect((await subscribed(client, 'user:me')).type).toBe('subscribed');
      const again = await StreamClient.connect(base, { ticket: minted.body.ticket }).catch((e: Frame) => e);
      expect(again.status).toBe(401);
      expect(again.body.code).toBe('PLX_REALTIME_TICKET_INVALID');
      const late = await t.request({ method: 'POST', url: '/api/v1/events/stream/ticket', token: member });
      await new Promise((r) => setTimeout(r, 1100));
      const expired = await StreamClient.connect(base, { ticket: late.body.ticket }).catch((e: Frame) => e);
      expect(expired.status).toBe(401);
      expect(expired.body.code).toBe('PLX_REALTIME_TICKET_EXPIRED');
      const forged = await StreamClient.connect(base, { ticket: 'rtk_x' }).catch((e: Frame) => e);
      expect(forged.body.code).toBe('PLX_REALTIME_TICKET_INVALID');
    });

    it('checks each subscription: another user, another tenant, no permission get error frames; the stream stays', async () => {
      const client = await connect({ token: member });
      expect((await subscribed(client, `user:${a.adminId}`)).code).toBe('PLX_REALTIME_CHANNEL_FORBIDDEN');
      expect((await subscribed(client, 'tenant')).code).toBe('PLX_REALTIME_CHANNEL_FORBIDDEN');
      expect((await subscribed(client, `app:${appA}`)).code).toBe('PLX_REALTIME_CHANNEL_FORBIDDEN');
      expect((await subscribed(client, 'everything')).code).toBe('PLX_REALTIME_CHANNEL_INVALID');
      expect((await subscribed(client, 'user:me')).type).toBe('subscribed');
      const admin = await connect({ token: a.adminToken });
      expect((await subscribed(admin, `app:${appB}`)).code).toBe('PLX_REALTIME_CHANNEL_FORBIDDEN');
      expect((await subscribed(admin, 'tenant', ['crm.**'])).code).toBe('PLX_REALTIME_CHANNEL_INVALID');
      client.send({ type: 'ping' });
      expect((await client.take((f) => f.type === 'pong')).type).toBe('pong');
    });

    it("streams the tenant's events with ids and type filters, never another tenant's", async () => {
      const admin = await connect({ token: a.adminToken });
      expect((await subscribed(admin, 'tenant', ['crm.deal.*'])).type).toBe('subscribed');
      const other = await connect({ token: b.adminToken });
      expect((await subscribed(other, 'tenant')).type).toBe('subscribed');
      const byApp = await connect({ token: a.adminToken });
      expect((await subscribed(byApp, `app:${appA}`)).type).toBe('subscribed');
      await publish(a.adminToken, appA, 'lead.created');
      const won = await publish(a.adminToken, appA, 'deal.won', { amount: 5 });
      const frame = await admin.take((f) => f.type === 'event');
      expect(frame.event.id).toBe(won.id);
      expect(frame.event.type).toBe('crm.deal.won');
      expect(frame.id).toMatch(/^\d+$/);
      // the bus orders per key only: two keyless events may reach the log either way round
      const appTypes = [
        (await byApp.take((f) => f.type === 'event')).event.type,
        (await byApp.take((f) => f.type === 'event')).event.type,
      ];
      expect(appTypes.sort()).toEqual(['crm.deal.won', 'crm.lead.created']);
      await publish(b.adminToken, appB, 'deal.lost');
      expect((await other.take((f) => f.type === 'event')).event.tenantid).toBe(b.id);
      expect(admin.events()).toEqual([]);
    });

    it('resumes after a disconnect: everything missed, once, in order, then live; a trimmed gap is told', async () => {
      const first = await connect({ token: a.adminToken });
      await subscribed(first, 'tenant', ['crm.*']);
      await publish(a.adminToken, appA, 'seen.one');
      const last = await first.take((f) => f.type === 'event');
      first.close();
      await first.closed;
      const missed = [];
      for (let i = 0; i < 5; i += 1) missed.push((await publish(a.adminToken, appA, `missed.n${i}`)).id);
      await new Promise((r) => setTimeout(r, 300));
      const again = await connect({ token: a.adminToken });
      again.send({
        type: 'resume',
        lastEventId: last.id,
        subscriptions: [{ channel: 'tenant', types: ['crm.*'] }],
      });
      const resumed = await again.take((f) => f.type === 'resumed');
      expect(resumed.filled).toBe(5);
      const live = await publish(a.adminToken, appA, 'live.after');
      await again.take((f) => f.type === 'event' && f.event.id === live.id);
      const got = [...again.events()];
      // each missed event once (in the stream log's order: the bus orders per key only)
      expect(got.map((f: Frame) => f.event.id).sort()).toEqual([...missed].sort());
      const ids = got.map((f: Frame) => Number(f.id));
      expect([...ids].sort((x, y) => x - y)).toEqual(ids);

      // a resume while events keep coming: each once, in id order, none lost
      const burst = Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          publish(a.adminToken, appA, `burst.n${i}`).then((e) => e.id as string),
        ),
      );
      const racing = await connect({ token: a.adminToken });
      racing.send({
        type: 'resume',
        lastEventId: last.id,
        subscriptions: [{ channel: 'tenant', types: ['crm.*'] }],
      });
      const burstIds = await burst;
      const seen: Frame[] = [];
      while (!burstIds.every((id) => seen.some((f) => f.event.id === id)))
        seen.push(await racing.take((f) => f.type === 'event'));
      await new Promise((r) => setTimeout(r, 300));
      seen.push(...racing.events());
      const seenIds = seen.map((f) => f.event.id);
      expect(new Set(seenIds).size).toBe(seenIds.length);
      expect(seenIds.slice(0, 6).sort()).toEqual([...missed, live.id].sort());
      const seqs = seen.map((f) => Number(f.id));
      expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);

      const late = await connect({ token: a.adminToken });
      late.send({ type: 'subscribe', channel: 'tenant' });
      late.send({ type: 'resume', lastEventId: last.id });
      expect((await late.take((f) => f.type === 'error')).code).toBe('PLX_REALTIME_FRAME_INVALID');

      await sql`delete from core.realtime_log where seq <= ${Number(last.id) + 1}`.execute(t.app.database.db);
      const gap = await connect({ token: a.adminToken });
      gap.send({
        type: 'resume',
        lastEventId: String(Number(last.id) - 1),
        subscriptions: [{ channel: 'tenant' }],
      });
      const told = await gap.take((f) => f.type === 'gap');
      expect(Number(told.oldestEventId)).toBeGreaterThan(Number(last.id));
    });

    it("refuses a resume id of another tenant's stream and one that is not an id", async () => {
      const other = await connect({ token: b.adminToken });
      await subscribed(other, 'tenant');
      await publish(b.adminToken, appB, 'deal.b');
      const foreignId = (await other.take((f) => f.type === 'event')).id;
      const client = await connect({ token: a.adminToken });
      client.send({ type: 'resume', lastEventId: foreignId, subscriptions: [{ channel: 'tenant' }] });
      expect((await client.take((f) => f.type === 'error' && f.code !== undefined)).code).toBe(
        'PLX_REALTIME_RESUME_FOREIGN',
      );
      const bad = await connect({ token: a.adminToken });
      bad.send({ type: 'resume', lastEventId: '1; drop table', subscriptions: [] });
      expect((await bad.take((f) => f.type === 'error')).code).toBe('PLX_REALTIME_RESUME_INVALID');
      const future = await connect({ token: a.adminToken });
      future.send({ type: 'resume', lastEventId: '999999999', subscriptions: [] });
      expect((await future.take((f) => f.type === 'error')).code).toBe('PLX_REALTIME_RESUME_INVALID');
    });

    it('serves the same stream as SSE, resumable with Last-Event-ID', async () => {
      const ws = await connect({ token: a.adminToken });
      await subscribed(ws, 'tenant', ['crm.*']);
      await publish(a.adminToken, appA, 'sse.before');
      const before = await ws.take((f) => f.type === 'event');
      const mid = await publish(a.adminToken, appA, 'sse.missed');
      await ws.take((f) => f.type === 'event' && f.event.id === mid.id);
      const controller = new AbortController();
      const res = await fetch(`${base}/api/v1/events/stream?channels=tenant&types=crm.*`, {
        headers: {
          authorization: `Bearer ${a.adminToken}`,
          accept: 'text/event-stream',
          'last-event-id': before.id,
        },
        signal: controller.signal,
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/event-stream');
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      let text = '';
      const live = await publish(a.adminToken, appA, 'sse.live');
      while (!text.includes(live.id)) text += new TextDecoder().decode((await reader.read()).value);
      controller.abort();
      expect(text).toContain('event: subscribed');
      expect(text.indexOf(mid.id)).toBeLessThan(text.indexOf(live.id));
      expect(text).not.toContain(`"id":"${before.event.id}"`);
      expect(text).toMatch(/id: \d+\nevent: event\ndata: /);
      const unauth = await fetch(`${base}/api/v1/events/stream`, {
        headers: { accept: 'text/event-stream' },
      });
      expect(unauth.status).toBe(401);
      expect(((await unauth.json()) as Frame).code).toBe('PLX_AUTH_REQUIRED');
    });

    it('answers malformed, oversized and countless frames precisely; the process stays up', async () => {
      const client = await connect({ token: a.adminToken });
      client.send('not json');
      expect((await client.take((f) => f.type === 'error')).code).toBe('PLX_REALTIME_FRAME_INVALID');
      client.send({ type: 'launch' });
      expect((await client.take((f) => f.type === 'error')).code).toBe('PLX_REALTIME_FRAME_INVALID');
      client.send({ type: 'unsubscribe', channel: 'tenant' });
      expect((await client.take((f) => f.type === 'error')).code).toBe('PLX_REALTIME_FRAME_INVALID');
      for (const channel of ['tenant', 'user:me', `app:${appA}`]) await subscribed(client, channel);
      for (let i = 0; i < 10_000; i += 1) client.send({ type: 'subscribe', channel: `app:x${i}` });
      await until(() => client.frames.filter((f) => f.type === 'error').length === 10_000, 20_000);
      expect(new Set(client.frames.filter((f) => f.type === 'error').map((f) => f.code))).toEqual(
        new Set(['PLX_REALTIME_TOO_MANY_SUBSCRIPTIONS']),
      );
      client.send({ type: 'ping' });
      await client.take((f) => f.type === 'pong');
      const big = await connect({ token: a.adminToken });
      big.send(JSON.stringify({ type: 'subscribe', channel: 'x'.repeat(1024 * 1024) }));
      expect((await big.closed).code).toBe(1009);
      expect((await t.request({ method: 'GET', url: '/health' })).status).toBe(200);
    }, 30_000);

    it('beats both ways and closes a client that stopped answering within two beats', async () => {
      const beating = await createTestApp(kind, { realtimeHeartbeatMs: 300 });
      try {
        const url = (await beating.app.start()) ?? '';
        const token = await beating.adminToken();
        const client = await StreamClient.connect(url, { token }).catch((e: Frame) => e);
        // a super admin's credential names no tenant: a stream belongs to one
        expect(client.body.code).toBe('PLX_TENANT_REQUIRED');
        const tenant = await beating.createTenant('gamma');
        const alive = await StreamClient.connect(url, { token: tenant.adminToken });
        await alive.take((f) => f.type === 'ping', 2000);
        const stalled = await connectStalled(url, tenant.adminToken, []);
        await until(() => beating.app.services.realtime.size === 2);
        // the stalled one never answers a ping: closed within two beats; the live one stays
        await until(() => beating.app.services.realtime.size === 1, 3000);
        await new Promise((r) => setTimeout(r, 700));
        expect(beating.app.services.realtime.size).toBe(1);
        stalled.destroy();
        alive.close();
      } finally {
        await beating.close();
      }
    });

    it('drops a client that stops reading once its send buffer is full; the others are served', async () => {
      const before = t.app.services.realtime.size;
      const slow = await connectStalled(base, a.adminToken, [{ type: 'subscribe', channel: 'tenant' }]);
      await until(() => t.app.services.realtime.size === before + 1);
      const fast = await connect({ token: a.adminToken });
      await subscribed(fast, 'tenant', ['crm.big.*']);
      const blob = 'x'.repeat(60_000);
      let last = '';
      for (let i = 0; i < 120; i += 1) last = (await publish(a.adminToken, appA, `big.n${i}`, { blob })).id;
      await fast.take((f) => f.type === 'event' && f.event.id === last, 10_000);
      await until(() => t.app.services.realtime.size === before + 1);
      slow.destroy();
      const metrics = await t.request({ method: 'GET', url: '/metrics' });
      expect(metrics.body).toMatch(/realtime_backpressure_drops_total [1-9]/);
      expect(metrics.body).toMatch(/realtime_resume_fills_total [1-9]/);
      expect(metrics.body).toMatch(/realtime_messages_sent_total [1-9]/);
    }, 30_000);

    it('closes the stream when its session is revoked (logout)', async () => {
      const login = await t.request({
        method: 'POST',
        url: '/api/v1/auth/login',
        body: { email: 'member@acme.test', password: 'member-password-1', tenant: 'acme' },
      });
      const client = await connect({ token: login.body.accessToken });
      await subscribed(client, 'user:me');
      const out = await t.request({
        method: 'POST',
        url: '/api/v1/auth/logout',
        body: { refreshToken: login.body.refreshToken },
      });
      expect(out.status).toBe(204);
      const closed = await client.closed;
      expect(closed.code).toBe(4401);
      expect(client.frames.find((f) => f.type === 'error')?.code).toBe('PLX_REALTIME_CREDENTIAL_ENDED');
    });

    it('tells every client to reconnect elsewhere (1012) on shutdown', async () => {
      const client = await connect({ token: a.adminToken });
      await t.app.close();
      expect((await client.closed).code).toBe(1012);
    });
  });
