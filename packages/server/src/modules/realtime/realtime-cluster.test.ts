import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enabled, REDIS_URL } from '../../../test/engines.js';
import { createTestApp, type TestApp } from '../../../test/harness.js';
import { StreamClient } from '../../../test/stream-client.js';
import { type App, createApp } from '../../app/create-app.js';

// issue 16: a client on instance 1 sees what is published on instance 2 (PostgreSQL + Redis signals)
describe.runIf(enabled('postgres', 'redis'))('realtime across two instances (PostgreSQL + Redis)', () => {
  let first: TestApp;
  let second: App;
  let secondDir: string;
  let urls: [string, string];
  let tenant: Awaited<ReturnType<TestApp['createTenant']>>;
  let appId: string;
  const slug = `rt${randomBytes(3).toString('hex')}`;
  const clients: StreamClient[] = [];

  const publishOnSecond = async (type: string) => {
    const res = await second.server.inject({
      method: 'POST',
      url: `/api/v1/apps/${appId}/events`,
      headers: { authorization: `Bearer ${tenant.adminToken}` },
      payload: { category: 'crm', type },
    });
    expect(res.statusCode).toBe(201);
    return res.json() as { id: string };
  };

  beforeAll(async () => {
    first = await createTestApp('postgres', {
      redisUrl: REDIS_URL,
      signalsDriver: 'redis',
      signalsPrefix: `plx_test_${randomBytes(4).toString('hex')}`,
      eventsPollIntervalMs: 50,
      // the poll is the fallback for a lost signal; a minute here shows the signal carries it
      realtimePollIntervalMs: 60_000,
    });
    secondDir = await mkdtemp(path.join(os.tmpdir(), 'plexica-rt-second-'));
    second = await createApp({ ...first.config, dataDir: secondDir });
    urls = [(await first.app.start()) ?? '', (await second.start()) ?? ''];
    tenant = await first.createTenant(slug);
    appId = (
      await first.request({
        method: 'POST',
        url: '/api/v1/apps',
        token: tenant.adminToken,
        body: { name: 'X' },
      })
    ).body.id;
  });
  afterAll(async () => {
    for (const client of clients) client.close();
    await second?.close();
    await first?.close();
    await rm(secondDir, { recursive: true, force: true });
  });

  it('delivers an event published on instance 2 to a client on instance 1, and resumes on instance 2', async () => {
    const client = await StreamClient.connect(urls[0], { token: tenant.adminToken });
    clients.push(client);
    client.send({ type: 'subscribe', channel: 'tenant', types: ['crm.*'] });
    await client.take((f) => f.type === 'subscribed');
    const started = performance.now();
    const published = await publishOnSecond('deal.won');
    const frame = await client.take((f) => f.type === 'event');
    expect(frame.event.id).toBe(published.id);
    // well under the one-minute poll: the Redis signal woke instance 1
    expect(performance.now() - started).toBeLessThan(10_000);
    client.close();
    await client.closed;

    const missed = [(await publishOnSecond('deal.a')).id, (await publishOnSecond('deal.b')).id];
    const elsewhere = await StreamClient.connect(urls[1], { token: tenant.adminToken });
    clients.push(elsewhere);
    elsewhere.send({
      type: 'resume',
      lastEventId: frame.id,
      subscriptions: [{ channel: 'tenant', types: ['crm.*'] }],
    });
    await elsewhere.take((f) => f.type === 'resumed');
    // what the log had is filled; what was still on its way to the log follows live: both once, in order
    const got: string[] = [];
    while (got.length < missed.length) got.push((await elsewhere.take((f) => f.type === 'event')).event.id);
    await new Promise((r) => setTimeout(r, 300));
    expect(got.sort()).toEqual([...missed].sort());
    expect(elsewhere.events()).toEqual([]);
  });

  it('closes a stream on instance 1 when its session is revoked on instance 2', async () => {
    const login = await second.server.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: `admin@${slug}.test`, password: 'tenant-admin-pw-1', tenant: slug },
    });
    const { accessToken, refreshToken } = login.json() as { accessToken: string; refreshToken: string };
    const client = await StreamClient.connect(urls[0], { token: accessToken });
    clients.push(client);
    client.send({ type: 'subscribe', channel: 'user:me' });
    await client.take((f) => f.type === 'subscribed');
    const out = await second.server.inject({
      method: 'POST',
      url: '/api/v1/auth/logout',
      payload: { refreshToken },
    });
    expect(out.statusCode).toBe(204);
    expect((await client.closed).code).toBe(4401);
  });
});
