import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, DATABASES, type TestApp } from '../../test/harness.js';

for (const kind of DATABASES) {
  describe(`Idempotency-Key on creates (${kind})`, () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp(kind);
    });
    afterAll(async () => {
      await t?.close();
    });

    const createTenant = async (key: string, slug: string, token?: string) =>
      t.request({
        method: 'POST',
        url: '/api/v1/tenants',
        token: token ?? (await t.adminToken()),
        body: { slug, name: slug },
        headers: { 'idempotency-key': key },
      });

    it('replays the first response for a retry and creates once', async () => {
      const first = await createTenant('create-idem-1', 'idem-one');
      expect(first.status).toBe(201);
      const retry = await createTenant('create-idem-1', 'idem-one');
      expect(retry.status).toBe(201);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(retry.body).toEqual(first.body);
      const list = await t.request({
        method: 'GET',
        url: '/api/v1/tenants?limit=100',
        token: await t.adminToken(),
      });
      expect(list.body.items.filter((x: { slug: string }) => x.slug === 'idem-one')).toHaveLength(1);
    });

    it('refuses the same key with a different body (422) and a malformed key (400)', async () => {
      await createTenant('create-idem-2', 'idem-two');
      const reused = await createTenant('create-idem-2', 'idem-three');
      expect(reused.status).toBe(422);
      expect(reused.body.code).toBe('PLX_IDEMPOTENCY_KEY_REUSED');
      expect(await t.app.services.tenants.find('idem-three')).toBeUndefined();
      const bad = await createTenant('has space', 'idem-four');
      expect(bad.status).toBe(400);
      expect(bad.body.code).toBe('PLX_IDEMPOTENCY_KEY_INVALID');
      expect(await t.app.services.tenants.find('idem-four')).toBeUndefined();
    });

    it('scopes keys per caller: another caller with the same key is a new request', async () => {
      const tenant = await t.createTenant('idem-scope');
      const asAdmin = await t.request({
        method: 'POST',
        url: '/api/v1/users',
        token: tenant.adminToken,
        body: { email: 'a@idem.test', password: 'idem-password-1' },
        headers: { 'idempotency-key': 'same-key' },
      });
      expect(asAdmin.status).toBe(201);
      const other = await createTenant('same-key', 'idem-five');
      expect(other.status).toBe(201);
      expect(other.headers['idempotent-replayed']).toBeUndefined();
    });
  });
}
