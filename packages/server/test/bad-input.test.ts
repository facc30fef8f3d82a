import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, DATABASES, type TestApp } from './harness.js';

/** Row counts of the tables a bad request could have touched. */
async function snapshot(t: TestApp) {
  const db = t.app.database.db;
  const count = async (table: 'core.tenants' | 'core.users' | 'core.api_keys' | 'core.roles') =>
    Number(
      (
        await db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  return {
    tenants: await count('core.tenants'),
    users: await count('core.users'),
    apiKeys: await count('core.api_keys'),
    roles: await count('core.roles'),
  };
}

for (const kind of DATABASES) {
  describe(`bad input gets one precise problem and changes nothing (${kind})`, () => {
    let t: TestApp;
    let tenant: Awaited<ReturnType<TestApp['createTenant']>>;
    let member: string;
    beforeAll(async () => {
      t = await createTestApp(kind, { bodyLimit: 2048 });
      tenant = await t.createTenant('bad-input');
      member = await t.createMember('bad-input', tenant.adminToken, 'member@bad.test');
    });
    afterAll(async () => {
      await t?.close();
    });

    type Case = {
      name: string;
      status: number;
      code: string;
      field?: string;
      send: () => ReturnType<TestApp['request']>;
    };
    const raw = (url: string, payload: string, contentType: string, token?: string) => async () => {
      const res = await t.app.server.inject({
        method: 'POST',
        url,
        payload,
        headers: { 'content-type': contentType, ...(token && { authorization: `Bearer ${token}` }) },
      });
      return { status: res.statusCode, body: JSON.parse(res.body), headers: res.headers };
    };
    const cases = (): Case[] => [
      {
        name: 'malformed JSON',
        status: 400,
        code: 'PLX_MALFORMED_JSON',
        send: async () => raw('/api/v1/tenants', '{"slug": "x",', 'application/json', await t.adminToken())(),
      },
      {
        name: 'wrong type (no coercion of 123 to "123")',
        status: 400,
        code: 'PLX_VALIDATION',
        field: 'body.slug',
        send: async () =>
          t.request({
            method: 'POST',
            url: '/api/v1/tenants',
            token: await t.adminToken(),
            body: { slug: 123, name: 'x' },
          }),
      },
      {
        name: 'unknown field in a closed schema',
        status: 400,
        code: 'PLX_VALIDATION',
        field: 'body.isAdmin',
        send: () =>
          t.request({
            method: 'POST',
            url: '/api/v1/users',
            token: tenant.adminToken,
            body: { email: 'x@bad.test', password: 'some-password-1', isAdmin: true },
          }),
      },
      {
        name: 'missing required field',
        status: 400,
        code: 'PLX_VALIDATION',
        field: 'body.email',
        send: () =>
          t.request({
            method: 'POST',
            url: '/api/v1/users',
            token: tenant.adminToken,
            body: { password: 'p' },
          }),
      },
      {
        name: 'oversize body',
        status: 413,
        code: 'PLX_BODY_TOO_LARGE',
        send: async () =>
          t.request({
            method: 'POST',
            url: '/api/v1/tenants',
            token: await t.adminToken(),
            body: { slug: 'big-one', name: 'x'.repeat(10_000) },
          }),
      },
      {
        name: 'unsupported content type',
        status: 415,
        code: 'PLX_UNSUPPORTED_MEDIA_TYPE',
        send: async () => raw('/api/v1/tenants', 'slug=x', 'text/plain', await t.adminToken())(),
      },
      {
        name: 'path id that is not a uuid',
        status: 400,
        code: 'PLX_VALIDATION',
        send: () =>
          t.request({ method: 'DELETE', url: '/api/v1/users/not-a-uuid', token: tenant.adminToken }),
      },
      {
        name: 'no credential',
        status: 401,
        code: 'PLX_AUTH_REQUIRED',
        send: () => t.request({ method: 'POST', url: '/api/v1/users', body: { email: 'x@bad.test' } }),
      },
      {
        name: 'garbage bearer',
        status: 401,
        code: 'PLX_AUTH_TOKEN_INVALID',
        send: () => t.request({ method: 'GET', url: '/api/v1/users', token: 'not.a.jwt' }),
      },
      {
        name: 'forged JWT (payload edited, signature kept)',
        status: 401,
        code: 'PLX_AUTH_TOKEN_INVALID',
        send: () => {
          const [header, payload, signature] = tenant.adminToken.split('.');
          const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
          const forged = Buffer.from(
            JSON.stringify({ ...claims, sub: '00000000-0000-0000-0000-000000000000' }),
          ).toString('base64url');
          return t.request({
            method: 'GET',
            url: '/api/v1/users',
            token: `${header}.${forged}.${signature}`,
          });
        },
      },
      {
        name: 'malformed API key',
        status: 401,
        code: 'PLX_AUTH_API_KEY_INVALID',
        send: () => t.request({ method: 'GET', url: '/api/v1/users', token: 'plx_short' }),
      },
      {
        name: 'member calling a tenant_admin route',
        status: 403,
        code: 'PLX_PERMISSION_DENIED',
        send: () =>
          t.request({
            method: 'POST',
            url: '/api/v1/users',
            token: member,
            body: { email: 'y@bad.test', password: 'pw-long-enough-1' },
          }),
      },
      {
        name: 'tenant admin calling a super-admin route',
        status: 403,
        code: 'PLX_PERMISSION_DENIED',
        send: () =>
          t.request({
            method: 'POST',
            url: '/api/v1/tenants',
            token: tenant.adminToken,
            body: { slug: 'evil', name: 'x' },
          }),
      },
      {
        name: 'super admin on a tenant route without naming a tenant',
        status: 400,
        code: 'PLX_TENANT_REQUIRED',
        send: async () =>
          t.request({
            method: 'POST',
            url: '/api/v1/users',
            token: await t.adminToken(),
            body: { email: 'z@bad.test' },
          }),
      },
      {
        name: 'super admin naming an unknown tenant',
        status: 404,
        code: 'PLX_TENANT_NOT_FOUND',
        send: async () =>
          t.request({
            method: 'GET',
            url: '/api/v1/users',
            token: await t.adminToken(),
            tenant: 'no-such-tenant',
          }),
      },
      {
        name: 'unknown route',
        status: 404,
        code: 'PLX_ROUTE_NOT_FOUND',
        send: () => t.request({ method: 'GET', url: '/api/v1/nothing-here', token: tenant.adminToken }),
      },
      {
        name: 'tenant slug with SQL in it',
        status: 400,
        code: 'PLX_TENANT_SLUG_INVALID',
        send: async () =>
          t.request({
            method: 'POST',
            url: '/api/v1/tenants',
            token: await t.adminToken(),
            body: { slug: 'a;drop schema core', name: 'x' },
          }),
      },
      {
        name: 'paging out of range',
        status: 400,
        code: 'PLX_VALIDATION',
        field: 'querystring.limit',
        send: () => t.request({ method: 'GET', url: '/api/v1/users?limit=100000', token: tenant.adminToken }),
      },
    ];

    it.each(cases().map((c) => [c.name, c] as const))('%s', async (_name, c) => {
      const before = await snapshot(t);
      const res = await c.send();
      expect(res.status).toBe(c.status);
      expect(res.body.code).toBe(c.code);
      expect(res.body.status).toBe(c.status);
      expect(typeof res.body.traceId).toBe('string');
      expect(String(res.headers['content-type'])).toContain('application/problem+json');
      if (c.field) expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(c.field);
      if (c.status === 401) expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(await snapshot(t)).toEqual(before);
    });

    it('generates a trace id, keeps a safe given one and replaces an unsafe one', async () => {
      const generated = await t.request({ method: 'GET', url: '/api/v1/users', token: tenant.adminToken });
      expect(generated.headers['x-trace-id']).toMatch(/^[0-9a-f-]{36}$/);
      const given = await t.request({
        method: 'GET',
        url: '/api/v1/users',
        headers: { 'x-trace-id': 'abc-123' },
      });
      expect(given.headers['x-trace-id']).toBe('abc-123');
      expect(given.body.traceId).toBe('abc-123');
      const unsafe = await t.request({
        method: 'GET',
        url: '/health',
        headers: { 'x-trace-id': 'a b<script>' },
      });
      expect(unsafe.headers['x-trace-id']).not.toBe('a b<script>');
    });
  });
}
