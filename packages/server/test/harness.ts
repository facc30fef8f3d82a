import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import { type App, createApp } from '../src/app.js';
import { loadConfig, type PlexicaConfig } from '../src/config.js';

/** Every contract suite runs once per database engine. */
export const DATABASES = ['pglite', 'postgres'] as const;
export type DatabaseKind = (typeof DATABASES)[number];

export const ADMIN = { email: 'root@plexica.test', password: 'root-password-123' };
export const TEST_MASTER_KEY = Buffer.alloc(32, 7).toString('base64');
export const PG_ADMIN_URL = process.env.PLEXICA_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestApp {
  app: App;
  kind: DatabaseKind;
  config: PlexicaConfig;
  /** Calls the app with `app.inject`; `token` becomes the bearer credential. */
  request(options: {
    method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
    url: string;
    token?: string;
    tenant?: string;
    body?: unknown;
    headers?: Record<string, string>;
    // biome-ignore lint/suspicious/noExplicitAny: tests assert response bodies field by field
  }): Promise<{ status: number; body: any; headers: Record<string, unknown> }>;
  login(email: string, password: string, tenant?: string): Promise<string>;
  /** Super admin access token. */
  adminToken(): Promise<string>;
  /** Creates a tenant and a tenant_admin in it; returns ids and the admin's token. */
  createTenant(slug: string): Promise<{ id: string; slug: string; adminToken: string; adminId: string }>;
  close(): Promise<void>;
}

/**
 * A fresh, isolated app: PGlite in a copy of the template data dir, or a new
 * PostgreSQL database named from a random hash. Both are removed on close.
 */
export async function createTestApp(
  kind: DatabaseKind,
  overrides: Partial<PlexicaConfig> = {},
): Promise<TestApp> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'plexica-test-'));
  let databaseUrl: string | undefined;
  let dropDatabase: (() => Promise<void>) | undefined;
  if (kind === 'pglite') {
    await cp(inject('pgliteTemplate'), path.join(dataDir, 'pgdata'), { recursive: true });
  } else {
    const name = `plx_test_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    await admin.query(`create database ${name}`);
    await admin.end();
    const url = new URL(PG_ADMIN_URL);
    url.pathname = `/${name}`;
    databaseUrl = url.toString();
    dropDatabase = async () => {
      const client = new pg.Client({ connectionString: PG_ADMIN_URL });
      await client.connect();
      await client.query(`drop database if exists ${name} with (force)`);
      await client.end();
    };
  }
  const config = loadConfig(
    {},
    {
      dataDir,
      databaseUrl,
      masterKey: [TEST_MASTER_KEY],
      adminEmail: ADMIN.email,
      adminPassword: ADMIN.password,
      logLevel: 'silent',
      rateLimitUser: 1_000_000,
      rateLimitTenant: 1_000_000,
      rateLimitAnonymous: 1_000_000,
      databasePoolSize: 5,
      port: 0,
      host: '127.0.0.1',
      ...overrides,
    },
  );
  const app = await createApp(config);

  const request: TestApp['request'] = async ({ method, url, token, tenant, body, headers = {} }) => {
    const response = await app.server.inject({
      method,
      url,
      headers: {
        ...(token && { authorization: `Bearer ${token}` }),
        ...(tenant && { 'x-tenant-id': tenant }),
        ...headers,
      },
      ...(body !== undefined && { payload: body as object }),
    });
    const type = String(response.headers['content-type'] ?? '');
    return {
      status: response.statusCode,
      body: type.includes('json') && response.body ? JSON.parse(response.body) : response.body,
      headers: response.headers,
    };
  };

  const login = async (email: string, password: string, tenant?: string) => {
    const res = await request({
      method: 'POST',
      url: '/api/v1/auth/login',
      body: { email, password, ...(tenant && { tenant }) },
    });
    if (res.status !== 200)
      throw new Error(`login ${email} failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.accessToken as string;
  };

  let admin: string | undefined;
  const adminToken = async () => {
    admin ??= await login(ADMIN.email, ADMIN.password);
    return admin;
  };

  return {
    app,
    kind,
    config,
    request,
    login,
    adminToken,
    async createTenant(slug) {
      const token = await adminToken();
      const tenant = await request({
        method: 'POST',
        url: '/api/v1/tenants',
        token,
        body: { slug, name: slug },
      });
      if (tenant.status !== 201) throw new Error(`create tenant ${slug}: ${JSON.stringify(tenant.body)}`);
      const email = `admin@${slug}.test`;
      const user = await request({
        method: 'POST',
        url: `/api/v1/tenants/${tenant.body.id}/users`,
        token,
        body: { email, password: 'tenant-admin-pw-1', roles: ['tenant_admin'] },
      });
      if (user.status !== 201) throw new Error(`create admin of ${slug}: ${JSON.stringify(user.body)}`);
      return {
        id: tenant.body.id,
        slug,
        adminId: user.body.id,
        adminToken: await login(email, 'tenant-admin-pw-1', slug),
      };
    },
    async close() {
      await app.close();
      await dropDatabase?.();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
