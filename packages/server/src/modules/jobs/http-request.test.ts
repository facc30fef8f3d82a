import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Type } from '@sinclair/typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASES } from '../../../test/engines.js';
import { createTestApp, type TestApp } from '../../../test/harness.js';
import { waitFor } from '../../../test/wait.js';

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A local receiver: answers each request with the next planned status (200 when none is left). */
async function receiver() {
  const received: Received[] = [];
  const plan: number[] = [];
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    received.push({
      method: req.method!,
      url: req.url!,
      headers: req.headers,
      body: Buffer.concat(chunks).toString(),
    });
    const status = plan.shift() ?? 200;
    res.writeHead(status, { 'content-type': 'application/json', 'x-receiver': 'yes' });
    res.end(
      req.url === '/big' ? 'x'.repeat(100_000) : JSON.stringify({ ok: status < 300, n: received.length }),
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { received, plan, port, url: `http://127.0.0.1:${port}`, close: () => server.close() };
}

const kind = DATABASES[0] ?? 'pglite';

describe(`the built-in http.request job type (${kind})`, () => {
  let t: TestApp;
  let r: Awaited<ReturnType<typeof receiver>>;
  let a: { id: string; slug: string; adminToken: string };
  const enqueue = (body: unknown) =>
    t.request({ method: 'POST', url: '/api/v1/jobs', token: a.adminToken, body });
  const settled = (id: string) =>
    waitFor(async () => {
      const job = (await t.request({ method: 'GET', url: `/api/v1/jobs/${id}`, token: a.adminToken })).body;
      return ['completed', 'failed', 'cancelled'].includes(job.status) ? job : undefined;
    });

  beforeAll(async () => {
    r = await receiver();
    t = await createTestApp(kind, {
      jobsPollIntervalSeconds: 1,
      jobsRetryDelaySeconds: 1,
      // the receiver is on loopback, which only an allow-listed host may be
      outboundAllowHosts: [`127.0.0.1:${r.port}`],
    });
    await t.app.services.jobs.start();
    a = await t.createTenant('http-jobs');
  });
  afterAll(async () => {
    await t?.close();
    r?.close();
  });

  it('is listed out of the box, and calls the URL with the method, headers and JSON body given', async () => {
    const types = await t.request({ method: 'GET', url: '/api/v1/jobs/types', token: a.adminToken });
    expect(types.body).toContain('http.request');
    const res = await enqueue({
      type: 'http.request',
      data: {
        url: `${r.url}/hook?x=1`,
        method: 'PUT',
        headers: { 'x-custom': 'v' },
        json: { hello: 'world' },
      },
    });
    expect(res.status).toBe(201);
    const job = await settled(res.body.id);
    expect(job.status).toBe('completed');
    expect(job.result).toMatchObject({ status: 200, truncated: false, headers: { 'x-receiver': 'yes' } });
    expect(JSON.parse(job.result.body)).toMatchObject({ ok: true });
    const call = r.received.at(-1)!;
    expect(call).toMatchObject({ method: 'PUT', url: '/hook?x=1', body: '{"hello":"world"}' });
    expect(call.headers).toMatchObject({ 'x-custom': 'v', 'content-type': 'application/json' });
  });

  it('retries a failing status until it succeeds, and fails for good after its attempts', async () => {
    r.plan.push(503, 500);
    const retried = await settled((await enqueue({ type: 'http.request', data: { url: r.url } })).body.id);
    expect(retried).toMatchObject({ status: 'completed', attempts: 3 });

    r.plan.push(404, 404);
    const dead = await settled(
      (await enqueue({ type: 'http.request', data: { url: r.url }, maxAttempts: 2 })).body.id,
    );
    expect(dead).toMatchObject({ status: 'failed', dead: true, attempts: 2 });
    expect(dead.lastError).toContain('HTTP 404');
  });

  it('counts the statuses of expectStatus as success, and keeps only the first 64 KiB', async () => {
    r.plan.push(404);
    const expected = await settled(
      (await enqueue({ type: 'http.request', data: { url: r.url, expectStatus: [404] } })).body.id,
    );
    expect(expected).toMatchObject({ status: 'completed', result: { status: 404 } });
    const big = await settled(
      (await enqueue({ type: 'http.request', data: { url: `${r.url}/big`, method: 'GET' } })).body.id,
    );
    expect(big.result.truncated).toBe(true);
    expect(big.result.body.length).toBe(64 * 1024);
  });

  it('refuses at enqueue a URL the outbound guard refuses, and a malformed payload', async () => {
    for (const url of [
      'http://127.0.0.1:1/',
      'https://10.1.2.3/',
      'https://169.254.169.254/latest/meta-data',
      'https://user:pw@example.com/',
    ]) {
      const res = await enqueue({ type: 'http.request', data: { url } });
      expect(res.status, url).toBe(400);
      expect(res.body.code, url).toBe('PLX_OUTBOUND_URL_FORBIDDEN');
    }
    for (const data of [
      { url: 'ftp://example.com/' },
      { url: r.url, method: 'TRACE' },
      { url: r.url, timeoutMs: 120_000 },
      { url: r.url, unknown: 1 },
      { url: r.url, body: 'a', json: {} },
    ]) {
      const res = await enqueue({ type: 'http.request', data });
      expect(res.status, JSON.stringify(data)).toBe(400);
      expect(res.body.code).toBe('PLX_VALIDATION');
    }
    // a schedule is checked the same way
    const schedule = await t.request({
      method: 'POST',
      url: '/api/v1/jobs/schedule',
      token: a.adminToken,
      body: { type: 'http.request', cron: '* * * * *', data: { url: 'https://10.0.0.1/' } },
    });
    expect(schedule.body.code).toBe('PLX_OUTBOUND_URL_FORBIDDEN');
  });
});

describe.runIf(DATABASES.includes('postgres'))('split roles agree on job types (postgres)', () => {
  let worker: TestApp;
  let api: TestApp;
  const ran: string[] = [];

  beforeAll(async () => {
    // two processes' worth of apps on one database: only the worker defines report.build
    worker = await createTestApp('postgres', { role: 'worker', jobsPollIntervalSeconds: 1 });
    worker.app.services.jobs.define<{ month: string }>({
      type: 'report.build',
      schema: Type.Object(
        { month: Type.String({ pattern: '^\\d{4}-\\d{2}$' }) },
        { additionalProperties: false },
      ),
      maxAttempts: 4,
      async handler(run) {
        ran.push(run.data.month);
        return { built: run.data.month };
      },
    });
    await worker.app.start();
    api = await createTestApp('postgres', { role: 'api', databaseUrl: worker.config.databaseUrl });
    await api.app.start();
  });
  afterAll(async () => {
    await api?.close();
    await worker?.close();
  });

  it("lets the api role enqueue a type only the worker defines, with the worker's schema and limits", async () => {
    const a = await api.createTenant('split-roles');
    const types = await api.request({ method: 'GET', url: '/api/v1/jobs/types', token: a.adminToken });
    expect(types.body).toContain('report.build');
    const bad = await api.request({
      method: 'POST',
      url: '/api/v1/jobs',
      token: a.adminToken,
      body: { type: 'report.build', data: { month: 'soon' } },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].field).toBe('data.month');
    const res = await api.request({
      method: 'POST',
      url: '/api/v1/jobs',
      token: a.adminToken,
      body: { type: 'report.build', data: { month: '2026-11' } },
    });
    expect(res.status).toBe(201);
    expect(res.body.maxAttempts).toBe(4);
    const done = await waitFor(async () => {
      const job = (
        await api.request({ method: 'GET', url: `/api/v1/jobs/${res.body.id}`, token: a.adminToken })
      ).body;
      return job.status === 'completed' ? job : undefined;
    });
    expect(done.result).toEqual({ built: '2026-11' });
    expect(ran).toEqual(['2026-11']);
  });
});
