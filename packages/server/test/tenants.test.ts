import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, DATABASES, type TestApp } from './harness.js';

for (const kind of DATABASES) {
  describe(`tenants (${kind})`, () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp(kind);
    });
    afterAll(async () => {
      await t?.close();
    });

    it('creates a tenant with its schema and lists it', async () => {
      const token = await t.adminToken();
      const created = await t.request({
        method: 'POST',
        url: '/api/v1/tenants',
        token,
        body: { slug: 'acme-corp', name: 'Acme' },
      });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ slug: 'acme-corp', name: 'Acme', status: 'active' });
      const schemas = await t.app.database.db
        .selectFrom('information_schema.schemata' as never)
        .select('schema_name' as never)
        .where('schema_name' as never, '=', 'tenant_acme_corp' as never)
        .execute();
      expect(schemas).toHaveLength(1);
      const list = await t.request({ method: 'GET', url: '/api/v1/tenants?limit=10', token });
      expect(list.status).toBe(200);
      expect(list.body.items.map((x: { slug: string }) => x.slug)).toContain('acme-corp');
    });

    it.each([
      ['../x', 'PLX_TENANT_SLUG_INVALID'],
      ['a;drop schema', 'PLX_TENANT_SLUG_INVALID'],
      ['ab', 'PLX_TENANT_SLUG_INVALID'],
      ['Upper', 'PLX_TENANT_SLUG_INVALID'],
      ['admin', 'PLX_TENANT_SLUG_RESERVED'],
    ])('refuses slug %j with %s and creates nothing', async (slug, code) => {
      const token = await t.adminToken();
      const before = await t.request({ method: 'GET', url: '/api/v1/tenants', token });
      const res = await t.request({
        method: 'POST',
        url: '/api/v1/tenants',
        token,
        body: { slug, name: 'x' },
      });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe(code);
      expect(res.headers['content-type']).toContain('application/problem+json');
      const after = await t.request({ method: 'GET', url: '/api/v1/tenants', token });
      expect(after.body.total).toBe(before.body.total);
    });
  });
}
