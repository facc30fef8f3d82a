import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, createTestApp, DATABASES, type TestApp } from '../../../test/harness.js';

for (const kind of DATABASES) {
  describe(`authentication and sessions (${kind})`, () => {
    let t: TestApp;
    let acme: Awaited<ReturnType<TestApp['createTenant']>>;
    let globex: Awaited<ReturnType<TestApp['createTenant']>>;
    beforeAll(async () => {
      t = await createTestApp(kind);
      acme = await t.createTenant('auth-acme');
      globex = await t.createTenant('auth-globex');
      for (const [tenant, password] of [
        [acme, 'acme-password-1'],
        [globex, 'globex-password-1'],
      ] as const) {
        const res = await t.request({
          method: 'POST',
          url: '/api/v1/users',
          token: tenant.adminToken,
          body: { email: 'Same@Example.test', password },
        });
        expect(res.status).toBe(201);
      }
    });
    afterAll(async () => {
      await t?.close();
    });

    const login = (body: Record<string, unknown>) =>
      t.request({ method: 'POST', url: '/api/v1/auth/login', body });
    const me = (token: string) => t.request({ method: 'GET', url: '/api/v1/auth/me', token });

    it('logs in a super admin without a tenant and a tenant user with one', async () => {
      const root = await login(ADMIN);
      expect(root.status).toBe(200);
      expect(root.body).toMatchObject({ expiresIn: 900, tokenType: 'Bearer' });
      expect((await me(root.body.accessToken)).body).toMatchObject({ isSuperAdmin: true, tenant: null });
      const user = await login({
        email: 'same@example.test',
        password: 'acme-password-1',
        tenant: 'auth-acme',
      });
      expect(user.status).toBe(200);
      expect((await me(user.body.accessToken)).body.tenant).toEqual({ id: acme.id, slug: 'auth-acme' });
    });

    it('keeps the same email apart in two tenants', async () => {
      const wrongTenant = await login({
        email: 'same@example.test',
        password: 'acme-password-1',
        tenant: 'auth-globex',
      });
      expect(wrongTenant.status).toBe(401);
      expect(wrongTenant.body.code).toBe('PLX_AUTH_INVALID_CREDENTIALS');
      const right = await login({
        email: 'same@example.test',
        password: 'globex-password-1',
        tenant: 'auth-globex',
      });
      expect((await me(right.body.accessToken)).body.tenant.slug).toBe('auth-globex');
      // a tenant user is not a super admin: no tenant means the super-admin realm
      const noTenant = await login({ email: 'same@example.test', password: 'acme-password-1' });
      expect(noTenant.status).toBe(401);
      // the answer says how to log in as a tenant user (as it would for any email: nothing leaks)
      expect(noTenant.body.detail).toContain('a tenant user must name the tenant');
      const ghost = await login({ email: 'ghost@plexica.test', password: 'whatever-123' });
      expect(ghost.body.detail).toBe(noTenant.body.detail);
    });

    it.each([
      ['wrong password', { email: ADMIN.email, password: 'nope-nope-nope' }],
      ['unknown email', { email: 'ghost@plexica.test', password: 'whatever-123' }],
      ['unknown tenant', { email: 'same@example.test', password: 'acme-password-1', tenant: 'no-such' }],
    ])('refuses %s with one code', async (_name, body) => {
      const res = await login(body);
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('PLX_AUTH_INVALID_CREDENTIALS');
    });

    it('rotates refresh tokens and revokes the whole session when an old one comes back', async () => {
      const first = await login({
        email: 'same@example.test',
        password: 'acme-password-1',
        tenant: 'auth-acme',
      });
      const second = await t.request({
        method: 'POST',
        url: '/api/v1/auth/refresh',
        body: { refreshToken: first.body.refreshToken },
      });
      expect(second.status).toBe(200);
      expect(second.body.refreshToken).not.toBe(first.body.refreshToken);
      expect((await me(second.body.accessToken)).status).toBe(200);

      const replay = await t.request({
        method: 'POST',
        url: '/api/v1/auth/refresh',
        body: { refreshToken: first.body.refreshToken },
      });
      expect(replay.status).toBe(401);
      expect(replay.body.code).toBe('PLX_AUTH_REFRESH_REUSED');
      const afterReuse = await t.request({
        method: 'POST',
        url: '/api/v1/auth/refresh',
        body: { refreshToken: second.body.refreshToken },
      });
      expect(afterReuse.status).toBe(401);
      expect(afterReuse.body.code).toBe('PLX_AUTH_SESSION_REVOKED');
      const access = await me(second.body.accessToken);
      expect(access.status).toBe(401);
      expect(access.body.code).toBe('PLX_AUTH_SESSION_REVOKED');
    });

    it('logout revokes the session and its access token', async () => {
      const pair = await login({
        email: 'same@example.test',
        password: 'acme-password-1',
        tenant: 'auth-acme',
      });
      const out = await t.request({
        method: 'POST',
        url: '/api/v1/auth/logout',
        body: { refreshToken: pair.body.refreshToken },
      });
      expect(out.status).toBe(204);
      expect((await me(pair.body.accessToken)).body.code).toBe('PLX_AUTH_SESSION_REVOKED');
      const unknown = await t.request({
        method: 'POST',
        url: '/api/v1/auth/logout',
        body: { refreshToken: 'plxr_nope' },
      });
      expect(unknown.status).toBe(401);
      expect(unknown.body.code).toBe('PLX_AUTH_TOKEN_INVALID');
    });

    it('lists and revokes the caller’s own sessions', async () => {
      const one = await login({
        email: 'same@example.test',
        password: 'globex-password-1',
        tenant: 'auth-globex',
      });
      const two = await login({
        email: 'same@example.test',
        password: 'globex-password-1',
        tenant: 'auth-globex',
      });
      const list = await t.request({
        method: 'GET',
        url: '/api/v1/auth/sessions',
        token: one.body.accessToken,
      });
      expect(list.status).toBe(200);
      const current = list.body.find((s: { current: boolean }) => s.current);
      const other = list.body.find((s: { current: boolean }) => !s.current);
      expect(current).toBeDefined();
      expect(other).toBeDefined();
      const revoke = await t.request({
        method: 'DELETE',
        url: `/api/v1/auth/sessions/${other.id}`,
        token: one.body.accessToken,
      });
      expect(revoke.status).toBe(204);
      expect((await me(two.body.accessToken)).status).toBe(401);
      expect((await me(one.body.accessToken)).status).toBe(200);
    });

    it('refuses tokens signed by another key, with alg none, or for another audience', async () => {
      const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
      const claims = JSON.parse(Buffer.from(acme.adminToken.split('.')[1]!, 'base64url').toString());
      const foreignKey = await new SignJWT(claims)
        .setProtectedHeader({
          alg: 'EdDSA',
          kid: JSON.parse(Buffer.from(acme.adminToken.split('.')[0]!, 'base64url').toString()).kid,
        })
        .sign(privateKey);
      const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${acme.adminToken.split('.')[1]}.`;
      for (const token of [foreignKey, none]) {
        const res = await me(token);
        expect(res.status).toBe(401);
        expect(res.body.code).toBe('PLX_AUTH_TOKEN_INVALID');
      }
    });

    it('refuses a suspended tenant’s token and login; after a resume only new logins work', async () => {
      const root = await t.adminToken();
      const user = await login({
        email: 'same@example.test',
        password: 'globex-password-1',
        tenant: 'auth-globex',
      });
      await t.request({
        method: 'PATCH',
        url: `/api/v1/tenants/${globex.id}`,
        token: root,
        body: { status: 'suspended' },
      });
      // the suspension ended the session (see tenants.test.ts)
      const refused = await me(user.body.accessToken);
      expect(refused.status).toBe(401);
      expect(refused.body.code).toBe('PLX_AUTH_SESSION_REVOKED');
      const relogin = await login({
        email: 'same@example.test',
        password: 'globex-password-1',
        tenant: 'auth-globex',
      });
      expect(relogin.status).toBe(403);
      expect(relogin.body.code).toBe('PLX_TENANT_SUSPENDED');
      const refresh = await t.request({
        method: 'POST',
        url: '/api/v1/auth/refresh',
        body: { refreshToken: user.body.refreshToken },
      });
      expect(refresh.body.code).toBe('PLX_AUTH_SESSION_REVOKED');
      await t.request({
        method: 'PATCH',
        url: `/api/v1/tenants/${globex.id}`,
        token: root,
        body: { status: 'active' },
      });
      expect((await me(user.body.accessToken)).status).toBe(401);
      const again = await login({
        email: 'same@example.test',
        password: 'globex-password-1',
        tenant: 'auth-globex',
      });
      expect((await me(again.body.accessToken)).status).toBe(200);
    });

    it('ends every session of a disabled user or one whose password changed', async () => {
      const created = await t.request({
        method: 'POST',
        url: '/api/v1/users',
        token: acme.adminToken,
        body: { email: 'temp@acme.test', password: 'temp-password-1' },
      });
      const session = await login({
        email: 'temp@acme.test',
        password: 'temp-password-1',
        tenant: 'auth-acme',
      });
      await t.request({
        method: 'PATCH',
        url: `/api/v1/users/${created.body.id}`,
        token: acme.adminToken,
        body: { password: 'new-password-22' },
      });
      expect((await me(session.body.accessToken)).body.code).toBe('PLX_AUTH_SESSION_REVOKED');
      const again = await login({
        email: 'temp@acme.test',
        password: 'new-password-22',
        tenant: 'auth-acme',
      });
      expect(again.status).toBe(200);
      await t.request({
        method: 'PATCH',
        url: `/api/v1/users/${created.body.id}`,
        token: acme.adminToken,
        body: { status: 'disabled' },
      });
      expect((await me(again.body.accessToken)).status).toBe(401);
      const disabled = await login({
        email: 'temp@acme.test',
        password: 'new-password-22',
        tenant: 'auth-acme',
      });
      expect(disabled.status).toBe(403);
      expect(disabled.body.code).toBe('PLX_AUTH_USER_DISABLED');
    });

    it('records tenant logins in the tenant’s audit log, a wrong password like an unknown email', async () => {
      const ok = await login({
        email: 'same@example.test',
        password: 'acme-password-1',
        tenant: 'auth-acme',
      });
      expect(ok.status).toBe(200);
      for (const email of ['same@example.test', 'Ghost@Example.test']) {
        expect((await login({ email, password: 'wrong-password-9', tenant: 'auth-acme' })).status).toBe(401);
      }
      const events = async (action: string) =>
        (
          await t.request({
            method: 'GET',
            url: `/api/v1/audit-events?action=${action}&limit=100`,
            token: acme.adminToken,
          })
        ).body;
      const userId = (await me(ok.body.accessToken)).body.userId;
      const [success] = await events('auth.login');
      expect(success).toMatchObject({
        actorType: 'user',
        actorId: userId,
        credential: 'password',
        targetType: 'user',
        targetId: userId,
      });
      expect(typeof success.data.sessionId).toBe('string');
      const [ghost, wrong] = await events('auth.login_failed');
      for (const [event, email] of [
        [wrong, 'same@example.test'],
        [ghost, 'ghost@example.test'],
      ] as const) {
        expect(event).toMatchObject({
          actorType: 'anonymous',
          actorId: null,
          credential: 'password',
          targetType: 'user',
          targetId: null,
          data: { email, reason: 'invalid_credentials' },
        });
      }
      // the same record either way: the log says no more than the 401 did
      expect(Object.keys(ghost).sort()).toEqual(Object.keys(wrong).sort());
      expect(ghost.data).toEqual({ ...wrong.data, email: 'ghost@example.test' });
    });

    it('publishes the signing keys as a JWKS', async () => {
      const jwks = await t.request({ method: 'GET', url: '/api/v1/auth/jwks' });
      expect(jwks.status).toBe(200);
      expect(jwks.body.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
      expect(jwks.body.keys[0].d).toBeUndefined();
    });
  });
}
