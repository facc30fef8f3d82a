import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = path.join(root, 'packages/server/bin/plexica.js');
const admin = { email: 'ops@blackbox.test', password: 'black-box-admin-pw' };

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

/** Starts the real `plexica start` and collects its output. */
function startProgram(dataDir: string, port: number) {
  const child = spawn(process.execPath, [bin, 'start'], {
    env: {
      PATH: process.env.PATH,
      PLEXICA_PORT: String(port),
      PLEXICA_HOST: '127.0.0.1',
      PLEXICA_DATA_DIR: dataDir,
      PLEXICA_ADMIN_EMAIL: admin.email,
      PLEXICA_ADMIN_PASSWORD: admin.password,
      PLEXICA_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, output: () => output };
}

describe('black box: the real program over HTTP', () => {
  let dataDir: string;
  let port: number;
  let program: ReturnType<typeof startProgram>;
  let base: string;
  const children: ChildProcess[] = [];

  const call = async (
    method: string,
    url: string,
    options: { token?: string; body?: unknown; tenant?: string } = {},
  ) => {
    const response = await fetch(`${base}${url}`, {
      method,
      headers: {
        ...(options.token && { authorization: `Bearer ${options.token}` }),
        ...(options.tenant && { 'x-tenant-id': options.tenant }),
        ...(options.body !== undefined && { 'content-type': 'application/json' }),
      },
      ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : undefined };
  };

  beforeAll(async () => {
    if (!existsSync(path.join(root, 'packages/server/dist/main.js'))) {
      await promisify(execFile)('npm', ['run', 'build'], { cwd: root });
    }
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'plexica-blackbox-'));
    await cp(inject('pgliteTemplate'), path.join(dataDir, 'pgdata'), { recursive: true });
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    program = startProgram(dataDir, port);
    children.push(program.child);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const ready = await fetch(`${base}/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (ready) return;
      if (program.child.exitCode !== null) throw new Error(`program exited early:\n${program.output()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`program not ready after 60 s:\n${program.output()}`);
  });

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await rm(dataDir, { recursive: true, force: true });
  });

  it('creates a tenant, a user, logs in, creates an API key that cannot touch another tenant', async () => {
    const login = await call('POST', '/api/v1/auth/login', { body: admin });
    expect(login.status).toBe(200);
    const root = login.body.accessToken as string;

    const acme = await call('POST', '/api/v1/tenants', {
      token: root,
      body: { slug: 'bb-acme', name: 'Acme' },
    });
    expect(acme.status).toBe(201);
    const globex = await call('POST', '/api/v1/tenants', {
      token: root,
      body: { slug: 'bb-globex', name: 'Globex' },
    });
    expect(globex.status).toBe(201);

    const alice = await call('POST', `/api/v1/tenants/${acme.body.id}/users`, {
      token: root,
      body: { email: 'alice@acme.test', password: 'alice-password-1', roles: ['tenant_admin'] },
    });
    expect(alice.status).toBe(201);
    const bob = await call('POST', `/api/v1/tenants/${globex.body.id}/users`, {
      token: root,
      body: { email: 'bob@globex.test', password: 'bob-password-12' },
    });
    expect(bob.status).toBe(201);

    const aliceLogin = await call('POST', '/api/v1/auth/login', {
      body: { email: 'alice@acme.test', password: 'alice-password-1', tenant: 'bb-acme' },
    });
    expect(aliceLogin.status).toBe(200);
    const key = await call('POST', '/api/v1/api-keys', {
      token: aliceLogin.body.accessToken,
      body: { name: 'ci', permissions: ['core:user:read'] },
    });
    expect(key.status).toBe(201);
    const secret = key.body.secret as string;
    expect(secret).toMatch(/^plx_/);

    const own = await call('GET', '/api/v1/users', { token: secret });
    expect(own.status).toBe(200);
    expect(own.body.items.map((u: { email: string }) => u.email)).toEqual(['alice@acme.test']);

    const foreign = await call('GET', `/api/v1/users/${bob.body.id}`, { token: secret });
    expect(foreign.status).toBe(404);
    expect(foreign.body.code).toBe('PLX_USER_NOT_FOUND');
    const named = await call('GET', '/api/v1/users', { token: secret, tenant: 'bb-globex' });
    expect(named.status).toBe(403);
    expect(named.body.code).toBe('PLX_TENANT_HEADER_FORBIDDEN');
    const write = await call('DELETE', `/api/v1/users/${bob.body.id}`, { token: secret });
    expect(write.status).toBe(403);
    expect(write.body.code).toBe('PLX_PERMISSION_DENIED');
    const platform = await call('GET', '/api/v1/tenants', { token: secret });
    expect(platform.status).toBe(403);
  });

  it('refuses a second process on the same data dir with a clear message', async () => {
    const second = startProgram(dataDir, await freePort());
    children.push(second.child);
    const code = await second.exited;
    expect(code).toBe(1);
    expect(second.output()).toContain('is in use by another plexica process');
  });

  it('shuts down gracefully on SIGTERM', async () => {
    program.child.kill('SIGTERM');
    const code = await Promise.race([
      program.exited,
      new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 15_000)),
    ]);
    expect(code).toBe(0);
  });
});
