import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../../../test/harness.js';
import { type Frame, StreamClient } from '../../../test/stream-client.js';
import { waitFor } from '../../../test/wait.js';

describe('open streams per principal and per tenant', () => {
  let t: TestApp;
  let base: string;
  let a: Awaited<ReturnType<TestApp['createTenant']>>;
  let b: Awaited<ReturnType<TestApp['createTenant']>>;
  let member: string;
  const open: StreamClient[] = [];
  const connect = async (token: string) => {
    const client = await StreamClient.connect(base, { token });
    open.push(client);
    return client;
  };
  const refused = (token: string) =>
    StreamClient.connect(base, { token }).then(
      () => {
        throw new Error('expected the stream to be refused');
      },
      (e: Frame) => e,
    );
  beforeAll(async () => {
    t = await createTestApp('pglite', {
      realtimeMaxStreamsPerPrincipal: 2,
      realtimeMaxStreamsPerTenant: 3,
      realtimeHeartbeatMs: 60_000,
    });
    base = (await t.app.start()) ?? '';
    a = await t.createTenant('acme');
    b = await t.createTenant('beta');
    member = await t.createMember('acme', a.adminToken, 'member@acme.test');
  });
  afterAll(async () => {
    for (const client of open) client.close();
    await t?.close();
  });

  it('refuses one stream more than a principal may hold (WebSocket and SSE), and the tenant past its bound', async () => {
    const first = await connect(member);
    await connect(member);
    const third = await refused(member);
    expect(third.status).toBe(429);
    expect(third.body).toMatchObject({ code: 'PLX_REALTIME_TOO_MANY_STREAMS', status: 429 });
    expect(third.body.detail).toMatch(/at most 2 open streams per user or API key/);
    const sse = await fetch(`${base}/api/v1/events/stream?channels=tenant`, {
      headers: { authorization: `Bearer ${member}`, accept: 'text/event-stream' },
    });
    expect(sse.status).toBe(429);
    expect(sse.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(((await sse.json()) as { code: string }).code).toBe('PLX_REALTIME_TOO_MANY_STREAMS');
    // another principal of the tenant has its own two, up to the tenant's three
    await connect(a.adminToken);
    const overTenant = await refused(a.adminToken);
    expect(overTenant.status).toBe(429);
    expect(overTenant.body.detail).toMatch(/this tenant has 3 open streams/);
    // another tenant is not counted with this one
    await connect(b.adminToken);
    // a closed stream gives its place back
    first.close();
    await waitFor(async () => {
      const again = await StreamClient.connect(base, { token: member }).catch(() => undefined);
      if (again) open.push(again);
      return again !== undefined;
    });
  });
});
