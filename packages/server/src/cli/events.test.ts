import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../test/event-bus.js';
import { createTestApp, type TestApp } from '../../test/harness.js';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const bin = path.join(root, 'packages/server/bin/plexica.js');

describe('plexica events tail and plexica webhooks deliveries (built CLI against a running server)', () => {
  let t: TestApp;
  let url: string;
  let token: string;
  let appId: string;
  beforeAll(async () => {
    // the built CLI is what runs: build what changed (tsc -b is incremental)
    await run('npm', ['run', 'build'], { cwd: root });
    t = await createTestApp('pglite');
    url = await t.app.server.listen({ port: 0, host: '127.0.0.1' });
    token = (await t.createTenant('cli-events')).adminToken;
    appId = (await t.request({ method: 'POST', url: '/api/v1/apps', token, body: { name: 'CLI' } })).body.id;
  }, 180_000);
  afterAll(async () => {
    await t?.close();
  });
  const publish = (type: string) =>
    t.request({
      method: 'POST',
      url: `/api/v1/apps/${appId}/events`,
      token,
      body: { category: 'crm', type, data: { n: 1 } },
    });

  it('prints the latest events, then follows new ones', async () => {
    await publish('deal.created');
    const child = spawn(
      process.execPath,
      [bin, 'events', '--url', url, '--token', token, 'tail', '--interval', '100'],
      {
        env: { PATH: process.env.PATH },
      },
    );
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    try {
      await until(() => out.includes('crm.deal.created'), 'the earlier event');
      await publish('deal.won');
      await until(() => out.includes('crm.deal.won'), 'the new event');
      expect(out.indexOf('crm.deal.created')).toBeLessThan(out.indexOf('crm.deal.won'));
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('webhooks deliveries names a refused call by its catalogue code', async () => {
    const { stdout: ok } = await run(
      process.execPath,
      [bin, 'webhooks', '--url', url, '--token', token, 'deliveries', '00000000-0000-4000-8000-000000000000'],
      {
        env: { PATH: process.env.PATH },
      },
    ).catch((err: { stdout: string; stderr: string }) => ({ stdout: err.stderr }));
    expect(ok).toContain('PLX_WEBHOOK_NOT_FOUND');
  });
});
