import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, DATABASES, type TestApp } from '../../../test/harness.js';

for (const kind of DATABASES) {
  describe(`users and roles (${kind})`, () => {
    let t: TestApp;
    let tenant: Awaited<ReturnType<TestApp['createTenant']>>;
    beforeAll(async () => {
      t = await createTestApp(kind);
      tenant = await t.createTenant('people-co');
    });
    afterAll(async () => {
      await t?.close();
    });

    const as = (token: string) => ({
      get: (url: string) => t.request({ method: 'GET', url, token }),
      post: (url: string, body: unknown) => t.request({ method: 'POST', url, token, body }),
      patch: (url: string, body: unknown) => t.request({ method: 'PATCH', url, token, body }),
      del: (url: string) => t.request({ method: 'DELETE', url, token }),
    });

    it('creates, reads, updates and deletes users, and audits it', async () => {
      const admin = as(tenant.adminToken);
      const created = await admin.post('/api/v1/users', {
        email: 'Carol@People.test',
        password: 'carol-password-1',
        displayName: 'Carol',
      });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({
        email: 'Carol@People.test',
        roles: ['member'],
        status: 'active',
        external: false,
      });
      expect((await admin.get(`/api/v1/users/${created.body.id}`)).body.displayName).toBe('Carol');
      const byEmail = await admin.get('/api/v1/users?email=carol@people.test');
      expect(byEmail.body.items).toHaveLength(1);
      const updated = await admin.patch(`/api/v1/users/${created.body.id}`, {
        displayName: null,
        roles: ['tenant_admin'],
      });
      expect(updated.status).toBe(200);
      expect(updated.body).toMatchObject({ displayName: null, roles: ['tenant_admin'] });
      expect((await admin.del(`/api/v1/users/${created.body.id}`)).status).toBe(204);
      expect((await admin.get(`/api/v1/users/${created.body.id}`)).status).toBe(404);
      const audit = await admin.get('/api/v1/audit-events?limit=100');
      const actions = audit.body
        .filter((e: { targetId: string }) => e.targetId === created.body.id)
        .map((e: { action: string }) => e.action);
      expect(actions).toEqual(['user.deleted', 'user.updated', 'user.created']);
    });

    it('lets a super admin manage a tenant’s users by path', async () => {
      const root = as(await t.adminToken());
      const created = await root.post(`/api/v1/tenants/${tenant.id}/users`, { email: 'ops@people.test' });
      expect(created.status).toBe(201);
      const list = await root.get(`/api/v1/tenants/${tenant.id}/users`);
      expect(list.body.items.map((u: { email: string }) => u.email)).toContain('ops@people.test');
      const missing = await root.get('/api/v1/tenants/00000000-0000-4000-8000-000000000000/users');
      expect(missing.status).toBe(404);
      expect(missing.body.code).toBe('PLX_TENANT_NOT_FOUND');
    });

    it('refuses duplicates, weak passwords and unknown or built-in roles precisely', async () => {
      const admin = as(tenant.adminToken);
      await admin.post('/api/v1/users', { email: 'dup@people.test' });
      const dup = await admin.post('/api/v1/users', { email: 'DUP@people.test' });
      expect(dup.status).toBe(409);
      expect(dup.body.code).toBe('PLX_USER_EMAIL_TAKEN');
      const weak = await admin.post('/api/v1/users', { email: 'weak@people.test', password: 'short' });
      expect(weak.status).toBe(400);
      expect(weak.body.code).toBe('PLX_PASSWORD_TOO_WEAK');
      const unknownRole = await admin.post('/api/v1/users', { email: 'r@people.test', roles: ['wizard'] });
      expect(unknownRole.status).toBe(404);
      expect(unknownRole.body.code).toBe('PLX_ROLE_NOT_FOUND');
      const superAdmin = await admin.post('/api/v1/users', {
        email: 's@people.test',
        roles: ['super_admin'],
      });
      expect(superAdmin.status).toBe(404);
      const builtIn = await admin.patch('/api/v1/roles/member', { name: 'x' });
      expect(builtIn.status).toBe(403);
      expect(builtIn.body.code).toBe('PLX_ROLE_BUILTIN');
      const platformPermission = await admin.post('/api/v1/roles', {
        key: 'boss',
        name: 'Boss',
        permissions: ['core:tenant:delete'],
      });
      expect(platformPermission.status).toBe(400);
      expect(platformPermission.body.code).toBe('PLX_PERMISSION_UNKNOWN');
      expect((await admin.get('/api/v1/users?email=r@people.test')).body.items).toEqual([]);
    });

    it('grants a custom role’s permissions, and takes them away when the role is deleted', async () => {
      const admin = as(tenant.adminToken);
      const role = await admin.post('/api/v1/roles', {
        key: 'auditor',
        name: 'Auditor',
        permissions: ['core:audit:read'],
      });
      expect(role.status).toBe(201);
      expect(
        (await admin.post('/api/v1/roles', { key: 'auditor', name: 'x', permissions: [] })).body.code,
      ).toBe('PLX_ROLE_KEY_TAKEN');
      const user = await admin.post('/api/v1/users', {
        email: 'aud@people.test',
        password: 'auditor-password-1',
        roles: ['member', 'auditor'],
      });
      const auditor = as(await t.login('aud@people.test', 'auditor-password-1', 'people-co'));
      expect((await auditor.get('/api/v1/audit-events')).status).toBe(200);
      expect((await auditor.post('/api/v1/users', { email: 'x@people.test' })).status).toBe(403);

      const roles = await admin.get('/api/v1/roles');
      expect(roles.body.map((r: { key: string }) => r.key)).toEqual(['tenant_admin', 'member', 'auditor']);
      expect((await admin.del('/api/v1/roles/auditor')).status).toBe(204);
      expect((await admin.get(`/api/v1/users/${user.body.id}`)).body.roles).toEqual(['member']);
      const denied = await auditor.get('/api/v1/audit-events');
      expect(denied.status).toBe(403);
      expect(denied.body.code).toBe('PLX_PERMISSION_DENIED');
    });

    it('keeps members to their permissions', async () => {
      const admin = as(tenant.adminToken);
      await admin.post('/api/v1/users', { email: 'm@people.test', password: 'member-password-1' });
      const member = as(await t.login('m@people.test', 'member-password-1', 'people-co'));
      expect((await member.get('/api/v1/users')).status).toBe(200);
      expect((await member.get('/api/v1/permissions')).status).toBe(200);
      for (const res of [
        await member.post('/api/v1/users', { email: 'n@people.test' }),
        await member.patch(`/api/v1/users/${tenant.adminId}`, { roles: ['member'] }),
        await member.del(`/api/v1/users/${tenant.adminId}`),
        await member.post('/api/v1/roles', { key: 'sneaky', name: 'x', permissions: [] }),
        await member.get('/api/v1/audit-events'),
        await member.get('/api/v1/identity-provider'),
        await member.get(`/api/v1/users/${tenant.adminId}/sessions`),
      ]) {
        expect(res.status).toBe(403);
        expect(res.body.code).toBe('PLX_PERMISSION_DENIED');
      }
    });
  });
}
