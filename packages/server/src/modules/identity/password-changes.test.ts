import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, createTestApp, DATABASES, type TestApp } from '../../../test/harness.js';

for (const kind of DATABASES) {
  describe(`own password change and operator reset (${kind})`, () => {
    let t: TestApp;
    let tenant: { id: string; slug: string; adminToken: string };
    const email = 'pw-member@pw.test';
    const login = (password: string) =>
      t.request({
        method: 'POST',
        url: '/api/v1/auth/login',
        body: { email, password, tenant: tenant.slug },
      });
    const me = (token: string) => t.request({ method: 'GET', url: '/api/v1/auth/me', token });
    const change = (token: string, body: unknown) =>
      t.request({ method: 'POST', url: '/api/v1/auth/password', token, body });

    beforeAll(async () => {
      t = await createTestApp(kind);
      tenant = await t.createTenant('pw-change');
      await t.createMember(tenant.slug, tenant.adminToken, email);
    });
    afterAll(() => t?.close());

    it('lets a member change their own password with the current one; their other sessions end', async () => {
      const here = (await login('member-password-1')).body;
      const elsewhere = (await login('member-password-1')).body;
      // a member holds no core:user:update, and needs none for their own password
      const denied = await t.request({
        method: 'PATCH',
        url: `/api/v1/users/${(await me(here.accessToken)).body.userId}`,
        token: here.accessToken,
        body: { password: 'new-member-password-2' },
      });
      expect(denied.status).toBe(403);

      const res = await change(here.accessToken, {
        currentPassword: 'member-password-1',
        newPassword: 'new-member-password-2',
      });
      expect(res.status).toBe(204);
      expect((await me(here.accessToken)).status).toBe(200);
      expect((await me(elsewhere.accessToken)).body.code).toBe('PLX_AUTH_SESSION_REVOKED');
      const refreshed = await t.request({
        method: 'POST',
        url: '/api/v1/auth/refresh',
        body: { refreshToken: elsewhere.refreshToken },
      });
      expect(refreshed.status).toBe(401);
      expect((await login('member-password-1')).status).toBe(401);
      expect((await login('new-member-password-2')).status).toBe(200);

      const audit = await t.request({
        method: 'GET',
        url: '/api/v1/audit-events?action=user.password_changed',
        token: tenant.adminToken,
      });
      expect(audit.body).toHaveLength(1);
    });

    it('refuses a wrong current password, a weak new one, an API key, and malformed bodies', async () => {
      const token = (await login('new-member-password-2')).body.accessToken;
      const wrong = await change(token, {
        currentPassword: 'not-it-at-all',
        newPassword: 'another-password-3',
      });
      expect(wrong).toMatchObject({
        status: 400,
        body: { code: 'PLX_CURRENT_PASSWORD_INVALID', errors: [{ field: 'currentPassword' }] },
      });
      const weak = await change(token, { currentPassword: 'new-member-password-2', newPassword: 'short' });
      expect(weak).toMatchObject({
        status: 400,
        body: { code: 'PLX_PASSWORD_TOO_WEAK', errors: [{ field: 'newPassword' }] },
      });
      for (const body of [
        {},
        { currentPassword: 'x' },
        { currentPassword: 1, newPassword: 2 },
        { currentPassword: 'x', newPassword: 'y', extra: 1 },
      ]) {
        const res = await change(token, body);
        expect(res.status, JSON.stringify(body)).toBe(400);
      }
      expect((await change('', { currentPassword: 'a', newPassword: 'b' })).status).toBe(401);

      const key = await t.request({
        method: 'POST',
        url: '/api/v1/api-keys',
        token: tenant.adminToken,
        body: { name: 'k', permissions: ['core:user:read'] },
      });
      const byKey = await change(key.body.secret, {
        currentPassword: 'x',
        newPassword: 'another-password-3',
      });
      expect(byKey).toMatchObject({ status: 403, body: { code: 'PLX_PERMISSION_DENIED' } });
      expect((await login('new-member-password-2')).status).toBe(200);
    });

    it('resets a lost password for the operator: the super admin, or a tenant user with the tenant', async () => {
      const adminToken = await t.adminToken();
      const { password } = await t.app.services.passwords.reset(ADMIN.email.toUpperCase());
      expect((await me(adminToken)).body.code).toBe('PLX_AUTH_SESSION_REVOKED');
      expect((await t.request({ method: 'POST', url: '/api/v1/auth/login', body: ADMIN })).status).toBe(401);
      const relogin = await t.request({
        method: 'POST',
        url: '/api/v1/auth/login',
        body: { email: ADMIN.email, password },
      });
      expect(relogin.status).toBe(200);

      const member = await t.app.services.passwords.reset(email, tenant.slug);
      expect((await login(member.password)).status).toBe(200);
      await expect(t.app.services.passwords.reset(email)).rejects.toMatchObject({
        code: 'PLX_USER_NOT_FOUND',
      });
      await expect(t.app.services.passwords.reset(email, 'no-such-tenant')).rejects.toMatchObject({
        code: 'PLX_TENANT_NOT_FOUND',
      });
    });
  });
}
