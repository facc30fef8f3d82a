import { createServer, type Server } from 'node:http';
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, DATABASES, type TestApp } from './harness.js';

/**
 * A stand-in identity provider speaking OIDC discovery + JWKS on loopback, with
 * Keycloak's realm-per-tenant URL shape. It is a protocol peer for our verifier,
 * not a test of Keycloak itself.
 */
async function startIdentityProvider() {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'realm-key-1', alg: 'RS256', use: 'sig' };
  let jwksRequests = 0;
  const server: Server = createServer((req, res) => {
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    if (req.url === '/realms/tenant-oidc-acme/.well-known/openid-configuration') {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          issuer: `${base}/realms/tenant-oidc-acme`,
          jwks_uri: `${base}/realms/tenant-oidc-acme/protocol/openid-connect/certs`,
        }),
      );
    } else if (req.url === '/realms/tenant-oidc-acme/protocol/openid-connect/certs') {
      jwksRequests += 1;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}/realms/tenant-oidc-acme`;
  const sign = (
    claims: Record<string, unknown>,
    options: { key?: CryptoKey; expiresIn?: string; audience?: string } = {},
  ) =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'realm-key-1' })
      .setIssuer(issuer)
      .setAudience(options.audience ?? 'plexica')
      .setSubject(String(claims.sub ?? 'kc-user-1'))
      .setIssuedAt()
      .setExpirationTime(options.expiresIn ?? '5m')
      .sign(options.key ?? privateKey);
  return {
    issuer,
    sign,
    close: () => new Promise<void>((r) => server.close(() => r())),
    jwksRequests: () => jwksRequests,
  };
}

for (const kind of DATABASES) {
  describe(`external identity via OIDC/JWKS (${kind})`, () => {
    let t: TestApp;
    let idp: Awaited<ReturnType<typeof startIdentityProvider>>;
    let acme: Awaited<ReturnType<TestApp['createTenant']>>;
    let other: Awaited<ReturnType<TestApp['createTenant']>>;
    const claims = {
      sub: 'kc-user-1',
      email: 'dana@acme.test',
      realm_access: { roles: ['acme-admin', 'offline_access'] },
    };
    const me = (token: string, tenant?: string) =>
      t.request({ method: 'GET', url: '/api/v1/auth/me', token, ...(tenant && { tenant }) });

    beforeAll(async () => {
      t = await createTestApp(kind);
      idp = await startIdentityProvider();
      acme = await t.createTenant('oidc-acme');
      other = await t.createTenant('oidc-other');
    });
    afterAll(async () => {
      await t?.close();
      await idp?.close();
    });

    it('stores the provider with its client secret encrypted and never returns the secret', async () => {
      const put = await t.request({
        method: 'PUT',
        url: '/api/v1/identity-provider',
        token: acme.adminToken,
        body: {
          issuer: idp.issuer,
          audience: 'plexica',
          clientId: 'plexica',
          clientSecret: 's3cret-value',
          roleMapping: { 'acme-admin': 'tenant_admin' },
        },
      });
      expect(put.status).toBe(200);
      expect(put.body).toMatchObject({
        issuer: idp.issuer,
        hasClientSecret: true,
        rolesClaim: 'realm_access.roles',
        defaultRoles: ['member'],
      });
      expect(JSON.stringify(put.body)).not.toContain('s3cret-value');
      const row = await t.app.database.db
        .selectFrom('core.identity_providers')
        .select('client_secret_id')
        .where('tenant_id', '=', acme.id)
        .executeTakeFirstOrThrow();
      const stored = await t.app.database.db
        .selectFrom('core.secrets')
        .selectAll()
        .where('id', '=', row.client_secret_id!)
        .executeTakeFirstOrThrow();
      expect(stored.ciphertext).not.toContain('s3cret');
      expect(Buffer.from(stored.ciphertext, 'base64').toString('latin1')).not.toContain('s3cret');
      expect(await t.app.services.secrets.read(row.client_secret_id!)).toBe('s3cret-value');
    });

    it('accepts a token of the tenant’s realm, maps roles and creates the user on first sight', async () => {
      const token = await idp.sign(claims);
      const res = await me(token);
      expect(res.status).toBe(200);
      expect(res.body.tenant).toEqual({ id: acme.id, slug: 'oidc-acme' });
      expect(res.body.roles).toEqual(['member', 'tenant_admin']);
      expect(res.body.permissions).toContain('core:user:create');
      const users = await t.request({ method: 'GET', url: '/api/v1/users?email=dana@acme.test', token });
      expect(users.body.items).toHaveLength(1);
      expect(users.body.items[0]).toMatchObject({ email: 'dana@acme.test', external: true });
      // the second token reuses the same user and the cached key set
      await me(await idp.sign(claims));
      expect(
        (await t.request({ method: 'GET', url: '/api/v1/users?email=dana@acme.test', token })).body.total,
      ).toBe(1);
      expect(idp.jwksRequests()).toBe(1);
    });

    it('follows role changes at the identity provider', async () => {
      const demoted = await idp.sign({ ...claims, realm_access: { roles: [] } });
      const res = await me(demoted);
      expect(res.body.roles).toEqual(['member']);
      expect(res.body.permissions).not.toContain('core:user:create');
    });

    it.each([
      ['another audience', { audience: 'someone-else' }, 'PLX_AUTH_TOKEN_INVALID'],
      ['an expired token', { expiresIn: '-1m' }, 'PLX_AUTH_TOKEN_EXPIRED'],
    ])('refuses %s', async (_name, options, code) => {
      const res = await me(await idp.sign(claims, options));
      expect(res.status).toBe(401);
      expect(res.body.code).toBe(code);
    });

    it('refuses a token signed by another key under the same kid, and an unknown issuer', async () => {
      const { privateKey } = await generateKeyPair('RS256');
      const forged = await me(await idp.sign(claims, { key: privateKey }));
      expect(forged.status).toBe(401);
      expect(forged.body.code).toBe('PLX_AUTH_TOKEN_INVALID');
      const stranger = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256' })
        .setIssuer('https://evil.example/realms/x')
        .setAudience('plexica')
        .setExpirationTime('5m')
        .sign(privateKey);
      const res = await me(stranger);
      expect(res.status).toBe(401);
      expect(res.body.detail).toBe('token issuer is not trusted');
    });

    it('keeps the realm’s tokens inside their tenant', async () => {
      const token = await idp.sign(claims);
      const crossing = await me(token, 'oidc-other');
      expect(crossing.status).toBe(403);
      expect(crossing.body.code).toBe('PLX_TENANT_HEADER_FORBIDDEN');
      const hijack = await t.request({
        method: 'PUT',
        url: '/api/v1/identity-provider',
        token: other.adminToken,
        body: { issuer: idp.issuer, audience: 'plexica' },
      });
      expect(hijack.status).toBe(409);
      expect(hijack.body.code).toBe('PLX_OIDC_ISSUER_TAKEN');
    });

    it('refuses the realm’s tokens while the tenant is suspended', async () => {
      const root = await t.adminToken();
      await t.request({
        method: 'PATCH',
        url: `/api/v1/tenants/${acme.id}`,
        token: root,
        body: { status: 'suspended' },
      });
      const res = await me(await idp.sign(claims));
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('PLX_TENANT_SUSPENDED');
      await t.request({
        method: 'PATCH',
        url: `/api/v1/tenants/${acme.id}`,
        token: root,
        body: { status: 'active' },
      });
    });
  });
}
