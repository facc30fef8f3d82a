import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, createTestApp, type TestApp } from '../../server/test/harness.js';
import { renderErrorCodes } from '../scripts/error-codes.js';
import { createClient, ERROR_CODES, type ErrorCode, isErrorCode, PlexicaApiError } from '../src/index.js';

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
    const codes = await readFile(path.join(sdkDir, 'src/error-codes.ts'), 'utf8');
    expect(codes, 'src/error-codes.ts is stale').toBe(renderErrorCodes());
  });

  it('sets the credential, tenant and trace id on every request, streamed or not', async () => {
    const seen: Headers[] = [];
    const recording: typeof fetch = async (input, init) => {
      seen.push(new Request(input, init).headers);
      return Response.json({ items: [], total: 0 });
    };
    let traceId = 'trace-1';
    const plexica = createClient({ baseUrl, token: 'plx_key', fetch: recording, traceId: () => traceId });
    plexica.setTenant('acme');
    await plexica.users.list();
    traceId = 'trace-2';
    await plexica.storage.download('a.txt');
    plexica.setToken(undefined);
    plexica.setTenant(undefined);
    await plexica.jobs.list();
    const sent = seen.map((h) => [h.get('authorization'), h.get('x-tenant-id'), h.get('x-trace-id')]);
    expect(sent).toEqual([
      ['Bearer plx_key', 'acme', 'trace-1'],
      ['Bearer plx_key', 'acme', 'trace-2'],
      [null, null, 'trace-2'],
    ]);
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
    expect(await plexica.events.deadLetters({ limit: 5 })).toEqual({ data: [], nextCursor: null });
    const replayed = await plexica.events
      .replayGroup('sdk.nobody', { time: new Date().toISOString() })
      .catch((err: unknown) => err);
    expect(replayed).toMatchObject({ status: 404, code: 'PLX_EVENT_GROUP_NOT_FOUND' });
    expect(Array.isArray(await plexica.events.consumerGroups())).toBe(true);

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

    await asUser.auth.changePassword('sdk-password-12', 'sdk-password-34');
    expect((await asUser.auth.me()).userId).toBe(user.id);
    const relogin = await createClient({ baseUrl }).auth.login({
      email: 'sdk@co.test',
      password: 'sdk-password-34',
      tenant: 'sdk-co',
    });
    expect(relogin.accessToken).toEqual(expect.any(String));
  });

  it('throws PlexicaApiError with the problem code', async () => {
    const plexica = createClient({ baseUrl });
    const error = await plexica.auth
      .login({ email: ADMIN.email, password: 'wrong-password-1' })
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(PlexicaApiError);
    expect(error).toMatchObject({ status: 401, code: 'PLX_AUTH_INVALID_CREDENTIALS' });
    expect((error as PlexicaApiError).is('PLX_AUTH_INVALID_CREDENTIALS')).toBe(true);
    // @ts-expect-error a code outside the catalogue does not compile
    expect((error as PlexicaApiError).is('PLX_AUTH_INVALID_CREDENTIAL')).toBe(false);
  });

  it('exports the catalogue codes, and keeps a code it does not know', async () => {
    const known: ErrorCode = 'PLX_USER_NOT_FOUND';
    expect(ERROR_CODES).toContain(known);
    expect(isErrorCode('PLX_FROM_A_NEWER_SERVER')).toBe(false);
    const newer = createClient({
      baseUrl,
      fetch: async () => Response.json({ code: 'PLX_FROM_A_NEWER_SERVER', detail: 'new' }, { status: 422 }),
    });
    const error = await newer.jobs.types().catch((err: unknown) => err);
    expect(error).toMatchObject({ status: 422, code: 'PLX_FROM_A_NEWER_SERVER' });
    const proxy = createClient({
      baseUrl,
      fetch: async () => new Response('<html>bad gateway</html>', { status: 502 }),
    });
    expect(await proxy.auth.me().catch((err: unknown) => err)).toMatchObject({
      status: 502,
      code: 'UNKNOWN',
    });
  });

  it('uploads with progress, downloads ranges and manages files', async () => {
    const admin = createClient({ baseUrl });
    admin.setToken((await admin.auth.login({ email: ADMIN.email, password: ADMIN.password })).accessToken);
    await admin.tenants.create({ slug: 'sdk-files', name: 'SDK Files' });
    admin.setTenant('sdk-files');

    const body = new Uint8Array(300 * 1024).fill(65);
    const seen: number[] = [];
    const file = await admin.storage.upload('docs/a b.txt', body, {
      contentType: 'text/plain',
      onProgress: ({ loaded, total }) => {
        seen.push(loaded);
        expect(total).toBe(body.byteLength);
      },
    });
    expect(file).toMatchObject({ path: 'docs/a b.txt', size: body.byteLength, contentType: 'text/plain' });
    expect(seen.length).toBeGreaterThan(1);
    expect(seen.at(-1)).toBe(body.byteLength);

    const part = await admin.storage.download('docs/a b.txt', { range: 'bytes=0-9' });
    expect(part.status).toBe(206);
    expect(await part.text()).toBe('AAAAAAAAAA');
    expect((await admin.storage.info('docs/a b.txt')).etag).toBe(file.etag);
    expect((await admin.storage.list({ prefix: 'docs/' })).items.map((f) => f.path)).toEqual([
      'docs/a b.txt',
    ]);
    await admin.storage.move({ from: 'docs/a b.txt', to: 'docs/c.txt' });
    const signed = await admin.storage.signedUrl('docs/c.txt', { expiresIn: 60 });
    expect(await (await fetch(signed.url)).text()).toHaveLength(body.byteLength);
    expect(await admin.storage.usage()).toMatchObject({ bytes: body.byteLength, objects: 1 });
    await admin.storage.remove('docs/c.txt');
    const error = await admin.storage.download('docs/c.txt').catch((err: unknown) => err);
    expect(error).toMatchObject({ status: 404, code: 'PLX_STORAGE_FILE_NOT_FOUND' });
    const existing = await admin.storage.upload('x.txt', new Uint8Array([1]));
    const refused = await admin.storage
      .upload('x.txt', new Uint8Array([2]), { overwrite: false })
      .catch((err: unknown) => err);
    expect(refused).toMatchObject({ status: 409, code: 'PLX_STORAGE_FILE_EXISTS' });
    expect(existing.size).toBe(1);
  });
});
