import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, createTestApp, type TestApp } from '../../server/test/harness.js';
import { createClient, PlexicaApiError } from '../src/index.js';

const sdkDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

describe('@plexica/sdk', () => {
  let t: TestApp;
  let baseUrl: string;
  beforeAll(async () => {
    t = await createTestApp('pglite');
    baseUrl = await t.app.server.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('is generated from the current routes (run `npm run sdk:generate` when this fails)', async () => {
    const committed = JSON.parse(await readFile(path.join(sdkDir, 'openapi.json'), 'utf8'));
    expect(t.app.server.swagger()).toEqual(committed);
  });

  it('drives the API with types from the OpenAPI document', async () => {
    const plexica = createClient({ baseUrl });
    const tokens = await plexica.auth.login({ email: ADMIN.email, password: ADMIN.password });
    plexica.setToken(tokens.accessToken);
    expect((await plexica.auth.me()).isSuperAdmin).toBe(true);

    const tenant = await plexica.tenants.create({ slug: 'sdk-co', name: 'SDK Co' }, 'sdk-create-1');
    const again = await plexica.tenants.create({ slug: 'sdk-co', name: 'SDK Co' }, 'sdk-create-1');
    expect(again.id).toBe(tenant.id);
    expect((await plexica.tenants.list({ limit: 10 })).items.map((x) => x.slug)).toContain('sdk-co');

    plexica.setTenant('sdk-co');
    const user = await plexica.users.create({
      email: 'sdk@co.test',
      password: 'sdk-password-12',
      roles: ['tenant_admin'],
    });
    expect(user.roles).toEqual(['tenant_admin']);
    const asUser = createClient({ baseUrl });
    asUser.setToken(
      (await asUser.auth.login({ email: 'sdk@co.test', password: 'sdk-password-12', tenant: 'sdk-co' }))
        .accessToken,
    );
    const { key, secret } = await asUser.apiKeys.create({ name: 'sdk', permissions: ['core:user:read'] });
    expect(key.prefix).toMatch(/^plx_/);
    const withKey = createClient({ baseUrl, token: secret });
    expect((await withKey.users.list()).items.map((u) => u.email)).toEqual(['sdk@co.test']);
  });

  it('throws PlexicaApiError with the problem code', async () => {
    const plexica = createClient({ baseUrl });
    const error = await plexica.auth
      .login({ email: ADMIN.email, password: 'wrong-password-1' })
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(PlexicaApiError);
    expect(error).toMatchObject({ status: 401, code: 'PLX_AUTH_INVALID_CREDENTIALS' });
  });
});
