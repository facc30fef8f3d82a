import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../../server/test/harness.js';
import { createClient, type StreamEvent } from '../src/index.js';

const until = async (check: () => boolean, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('@plexica/sdk realtime.subscribe', () => {
  let t: TestApp;
  let baseUrl: string;
  let tenant: Awaited<ReturnType<TestApp['createTenant']>>;
  let appId: string;
  const sockets: Duplex[] = [];
  beforeAll(async () => {
    t = await createTestApp('pglite', { eventsPollIntervalMs: 50, realtimePollIntervalMs: 200 });
    baseUrl = (await t.app.start()) ?? '';
    t.app.server.server.on('upgrade', (_req, socket: Duplex) => void sockets.push(socket));
    tenant = await t.createTenant('acme');
    appId = (
      await t.request({ method: 'POST', url: '/api/v1/apps', token: tenant.adminToken, body: { name: 'A' } })
    ).body.id;
  });
  afterAll(async () => {
    await t?.close();
  });
  const publish = async (type: string) =>
    (
      await t.request({
        method: 'POST',
        url: `/api/v1/apps/${appId}/events`,
        token: tenant.adminToken,
        body: { category: 'crm', type },
      })
    ).body.id as string;

  it('delivers events, reconnects after the connection drops and resumes without loss or repeat', async () => {
    const plexica = createClient({ baseUrl, token: tenant.adminToken });
    const got: StreamEvent[] = [];
    const statuses: string[] = [];
    const sub = plexica.realtime.subscribe({
      channels: [{ channel: 'tenant', types: ['crm.*'] }],
      onEvent: (event) => void got.push(event),
      onStatus: (s) => void statuses.push(s),
      minDelayMs: 50,
    });
    await until(() => statuses.includes('open'));
    await new Promise((r) => setTimeout(r, 200));
    const first = await publish('one.x');
    await until(() => got.length === 1);
    for (const socket of sockets.splice(0)) socket.destroy();
    const missed = [await publish('two.x'), await publish('three.x')];
    await until(() => got.length === 3).catch((e) => {
      console.log(
        'DEBUG',
        statuses,
        got.map((x) => x.type),
      );
      throw e;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(got[0]?.id).toBe(first);
    expect(
      got
        .slice(1)
        .map((e) => e.id)
        .sort(),
    ).toEqual([...missed].sort());
    expect(statuses).toContain('reconnecting');
    expect(sub.lastEventId).toMatch(/^\d+$/);
    sub.close();
  });
});
