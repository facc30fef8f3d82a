import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, DATABASES, type TestApp } from '../../../test/harness.js';
import { type Principal, type RequestContext, toTenantRef } from '../../context.js';

// issue 9 item 3: "you may grant only what you hold", and a user is changed only by someone
// holding every permission they hold. Each case below was shown over HTTP on the old code.
for (const kind of DATABASES) {
  describe(`delegated rights do not escalate (${kind})`, () => {
    let t: TestApp;
    let tenant: Awaited<ReturnType<TestApp['createTenant']>>;
    let memberKeys: string[];
    beforeAll(async () => {
      t = await createTestApp(kind);
      tenant = await t.createTenant('escalate-co');
      memberKeys = [...t.app.registry.builtInRole('member')];
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
    const admin = () => as(tenant.adminToken);

    /** A custom role with `permissions`, and a user holding it (plus `member` when asked). */
    const holderOf = async (key: string, permissions: string[], withMember = false) => {
      expect((await admin().post('/api/v1/roles', { key, name: key, permissions })).status).toBe(201);
      const email = `${key}@escalate.test`;
      const user = await admin().post('/api/v1/users', {
        email,
        password: 'holder-password-1',
        roles: withMember ? ['member', key] : [key],
      });
      expect(user.status).toBe(201);
      return {
        id: user.body.id as string,
        client: as(await t.login(email, 'holder-password-1', 'escalate-co')),
      };
    };
    // the tenant's own admin stays usable for setting up later cases; victims are other admins
    const newAdmin = async (email: string) => {
      const user = await admin().post('/api/v1/users', {
        email,
        password: 'victim-password-1',
        roles: ['tenant_admin'],
      });
      expect(user.status).toBe(201);
      return user.body.id as string;
    };
    const newMember = async (email: string) => {
      const user = await admin().post('/api/v1/users', { email, password: 'member-password-1' });
      expect(user.status).toBe(201);
      return user.body.id as string;
    };

    it('refuses a user:update holder who makes themselves tenant_admin', async () => {
      const holder = await holderOf('helpdesk', ['core:user:read', 'core:user:update']);
      const res = await holder.client.patch(`/api/v1/users/${holder.id}`, { roles: ['tenant_admin'] });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('PLX_PERMISSION_NOT_HELD');
      expect(res.body.detail).toContain('tenant_admin');
      expect((await admin().get(`/api/v1/users/${holder.id}`)).body.roles).toEqual(['helpdesk']);
      // nor the weaker member role, whose permissions this holder lacks too
      const member = await holder.client.patch(`/api/v1/users/${holder.id}`, { roles: ['member'] });
      expect(member.status).toBe(403);
      expect(member.body.code).toBe('PLX_PERMISSION_NOT_HELD');
    });

    it('refuses resetting or disabling a user who holds more, and allows it on an equal or weaker one', async () => {
      const holder = await holderOf('support', ['core:user:read', 'core:user:update'], true);
      const victim = await newAdmin('victim@escalate.test');
      const reset = await holder.client.patch(`/api/v1/users/${victim}`, {
        password: 'stolen-password-1',
      });
      expect(reset.status).toBe(403);
      expect(reset.body.code).toBe('PLX_PERMISSION_NOT_HELD');
      const login = await t.request({
        method: 'POST',
        url: '/api/v1/auth/login',
        body: { email: 'victim@escalate.test', password: 'stolen-password-1', tenant: 'escalate-co' },
      });
      expect(login.status).toBe(401);
      const disable = await holder.client.patch(`/api/v1/users/${victim}`, { status: 'disabled' });
      expect(disable.status).toBe(403);
      expect(disable.body.code).toBe('PLX_PERMISSION_NOT_HELD');
      expect((await admin().get(`/api/v1/users/${victim}`)).body.status).toBe('active');
      const demote = await holder.client.patch(`/api/v1/users/${victim}`, { roles: ['member'] });
      expect(demote.status).toBe(403);
      expect(demote.body.code).toBe('PLX_PERMISSION_NOT_HELD');

      // a member holds a subset of member + support: the support user may manage them
      const memberId = await newMember('helped@escalate.test');
      const helped = await holder.client.patch(`/api/v1/users/${memberId}`, {
        password: 'new-member-password-1',
        status: 'disabled',
      });
      expect(helped.status).toBe(200);
      expect(helped.body.status).toBe('disabled');
    });

    it('refuses listing or ending the sessions of a user who holds more', async () => {
      const holder = await holderOf('sessions-desk', ['core:session:manage', 'core:user:read'], true);
      const victimEmail = 'watched@escalate.test';
      const victim = await newAdmin(victimEmail);
      await t.login(victimEmail, 'victim-password-1', 'escalate-co');
      const [session] = (await admin().get(`/api/v1/users/${victim}/sessions`)).body;
      const list = await holder.client.get(`/api/v1/users/${victim}/sessions`);
      expect(list.status).toBe(403);
      expect(list.body.code).toBe('PLX_PERMISSION_NOT_HELD');
      const revoke = await holder.client.del(`/api/v1/users/${victim}/sessions/${session.id}`);
      expect(revoke.status).toBe(403);
      expect(revoke.body.code).toBe('PLX_PERMISSION_NOT_HELD');
      expect((await admin().get(`/api/v1/users/${victim}/sessions`)).body).toHaveLength(1);
      // a member's sessions are within reach
      const memberId = await newMember('session-member@escalate.test');
      await t.login('session-member@escalate.test', 'member-password-1', 'escalate-co');
      expect((await holder.client.get(`/api/v1/users/${memberId}/sessions`)).body).toHaveLength(1);
    });

    it('lets a tenant admin still manage members', async () => {
      const memberId = await newMember('managed@escalate.test');
      const res = await admin().patch(`/api/v1/users/${memberId}`, {
        password: 'managed-password-2',
        status: 'disabled',
        roles: ['member'],
      });
      expect(res.status).toBe(200);
      expect((await admin().del(`/api/v1/users/${memberId}`)).status).toBe(204);
    });

    it('refuses deleting a user who holds more', async () => {
      const holder = await holderOf('remover', ['core:user:read', 'core:user:delete'], true);
      const victim = await newAdmin('undeletable@escalate.test');
      const res = await holder.client.del(`/api/v1/users/${victim}`);
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('PLX_PERMISSION_NOT_HELD');
      expect((await admin().get(`/api/v1/users/${victim}`)).status).toBe(200);
      const memberId = await newMember('deletable@escalate.test');
      expect((await holder.client.del(`/api/v1/users/${memberId}`)).status).toBe(204);
    });

    it('refuses a user:create holder who creates a tenant_admin', async () => {
      const holder = await holderOf('recruiter', ['core:user:create', 'core:user:read'], true);
      const res = await holder.client.post('/api/v1/users', {
        email: 'boss@escalate.test',
        password: 'boss-password-123',
        roles: ['tenant_admin'],
      });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('PLX_PERMISSION_NOT_HELD');
      expect((await admin().get('/api/v1/users?email=boss@escalate.test')).body.items).toEqual([]);
      const plain = await holder.client.post('/api/v1/users', { email: 'plain@escalate.test' });
      expect(plain.status).toBe(201);
      expect(plain.body.roles).toEqual(['member']);
    });

    it('refuses a role:manage holder who widens a role, their own or another, or creates a wider one', async () => {
      const holder = await holderOf('role-keeper', ['core:role:manage'], true);
      const own = await holder.client.patch('/api/v1/roles/role-keeper', {
        permissions: ['core:role:manage', 'core:user:delete'],
      });
      expect(own.status).toBe(403);
      expect(own.body.code).toBe('PLX_PERMISSION_NOT_HELD');
      expect(own.body.detail).toContain('core:user:delete');

      const wide = await holder.client.post('/api/v1/roles', {
        key: 'wide',
        name: 'Wide',
        permissions: ['core:audit:read'],
      });
      expect(wide.status).toBe(403);
      expect(wide.body.code).toBe('PLX_PERMISSION_NOT_HELD');

      const narrow = await holder.client.post('/api/v1/roles', {
        key: 'narrow',
        name: 'Narrow',
        permissions: ['core:user:read'],
      });
      expect(narrow.status).toBe(201);
      const widen = await holder.client.patch('/api/v1/roles/narrow', {
        permissions: ['core:user:read', 'core:user:create'],
      });
      expect(widen.status).toBe(403);
      expect(widen.body.code).toBe('PLX_PERMISSION_NOT_HELD');

      // a role carrying what the holder lacks is not theirs to rename, narrow or delete either
      await admin().post('/api/v1/roles', {
        key: 'auditors',
        name: 'Auditors',
        permissions: ['core:audit:read'],
      });
      for (const res of [
        await holder.client.patch('/api/v1/roles/auditors', { permissions: [] }),
        await holder.client.del('/api/v1/roles/auditors'),
      ]) {
        expect(res.status).toBe(403);
        expect(res.body.code).toBe('PLX_PERMISSION_NOT_HELD');
      }
      const roles = (await admin().get('/api/v1/roles')).body as { key: string; permissions: string[] }[];
      expect(roles.find((r) => r.key === 'role-keeper')?.permissions).toEqual(['core:role:manage']);
      expect(roles.find((r) => r.key === 'auditors')?.permissions).toEqual(['core:audit:read']);

      // dropping a permission from one's own role is allowed
      const shrink = await holder.client.patch('/api/v1/roles/narrow', { permissions: [] });
      expect(shrink.status).toBe(200);
    });

    it('refuses IdP role mappings and default roles that carry permissions the caller lacks', async () => {
      const tenantRow = await t.app.services.tenants.get(tenant.id);
      const ctxWith = (permissions: string[], isSuperAdmin = false): RequestContext => {
        const principal: Principal = {
          type: 'user',
          id: tenant.adminId,
          userId: tenant.adminId,
          isSuperAdmin,
          roles: [],
          permissions: new Set(permissions),
          sessionId: null,
        };
        return { traceId: 'escalation-test', principal, tenant: toTenantRef(tenantRow) };
      };
      await admin().post('/api/v1/roles', {
        key: 'idp-mapped',
        name: 'Mapped',
        permissions: ['core:audit:read'],
      });
      const manager = ctxWith([...memberKeys, 'core:identity-provider:manage']);
      const roles = t.app.services.roles;
      for (const wanted of [['tenant_admin'], ['member', 'idp-mapped']]) {
        await expect(roles.assertAssignable(manager, wanted)).rejects.toMatchObject({
          code: 'PLX_PERMISSION_NOT_HELD',
        });
      }
      await expect(roles.assertAssignable(manager, ['member'])).resolves.toBeUndefined();
      await expect(roles.assertAssignable(ctxWith([], true), ['tenant_admin', 'idp-mapped'])).resolves.toBe(
        undefined,
      );
      await expect(roles.assertAssignable(manager, ['wizard'])).rejects.toMatchObject({
        code: 'PLX_ROLE_NOT_FOUND',
      });
    });
  });
}
