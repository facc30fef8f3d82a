import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { type App, type CreateAppOptions, createApp } from '../src/app/create-app.js';
import { loadConfig, type PlexicaConfig } from '../src/config/index.js';
import type { DatabaseKind } from './engines.js';
import { createScratchDatabase } from './scratch-database.js';

export { DATABASES, type DatabaseKind } from './engines.js';

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
  /** Creates a `member` in the tenant of `adminToken` and logs it in. @returns its access token */
  createMember(tenantSlug: string, adminToken: string, email: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * A fresh, isolated app: PGlite in a copy of the template data dir, or a new
 * PostgreSQL database named from a random hash. Both are removed on close.
 */
export async function createTestApp(
  kind: DatabaseKind,
  overrides: Partial<PlexicaConfig> = {},
  appOptions: CreateAppOptions = {},
): Promise<TestApp> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'plexica-test-'));
  let databaseUrl: string | undefined;
  let dropDatabase: (() => Promise<void>) | undefined;
  if (kind === 'pglite') {
    await cp(inject('pgliteTemplate'), path.join(dataDir, 'pgdata'), { recursive: true });
  } else {
    const scratch = await createScratchDatabase(PG_ADMIN_URL, 'plx_test');
    databaseUrl = scratch.url;
    dropDatabase = scratch.drop;
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
  const app = await createApp(config, appOptions);
  await app.bootstrapAdmin();

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
    async createMember(tenantSlug, token, email) {
      const user = await request({
        method: 'POST',
        url: '/api/v1/users',
        token,
        body: { email, password: 'member-password-1' },
      });
      if (user.status !== 201) throw new Error(`create member ${email}: ${JSON.stringify(user.body)}`);
      return login(email, 'member-password-1', tenantSlug);
    },
    async close() {
      await app.close();
      await dropDatabase?.();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
