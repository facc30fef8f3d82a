import { cp, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createTestApp,
  DATABASES,
  PG_ADMIN_URL,
  TEST_MASTER_KEY,
  type TestApp,
} from '../../../test/harness.js';
import { createScratchDatabase } from '../../../test/scratch-database.js';
import { CORE_MIGRATIONS } from '../../app/create-app.js';
import { loadConfig } from '../../config/index.js';
import { openDatabase } from '../../infra/database/index.js';
import { migrateSchema } from '../../infra/database/migrator.js';
import { UNTRUSTED_TOKEN } from './oidc.js';

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

/**
 * A stand-in identity provider speaking OIDC discovery + JWKS on loopback, with
 * Keycloak's realm-per-tenant URL shape. It is a protocol peer for our verifier,
 * not a test of Keycloak itself. It counts what it is asked, so tests can see
 * which requests reach it.
 */
async function startIdentityProvider(realm: string, options: { jwksStatus?: number } = {}) {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'realm-key-1', alg: 'RS256', use: 'sig' };
  const counts = { discovery: 0, jwks: 0 };
  const server: Server = createServer((req, res) => {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    if (req.url === `/realms/${realm}/.well-known/openid-configuration`) {
      counts.discovery += 1;
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          issuer: `${base}/realms/${realm}`,
          jwks_uri: `${base}/realms/${realm}/protocol/openid-connect/certs`,
        }),
      );
    } else if (req.url === `/realms/${realm}/protocol/openid-connect/certs`) {
      counts.jwks += 1;
      res.statusCode = options.jwksStatus ?? 200;
      res.setHeader('content-type', 'application/json');
      res.end(res.statusCode === 200 ? JSON.stringify({ keys: [jwk] }) : '{"error":"down"}');
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = `http://${host}/realms/${realm}`;
  const sign = (
    claims: Record<string, unknown>,
    options: {
      key?: CryptoKey;
      /** null: no exp claim at all */
      expiresIn?: string | null;
      audience?: string | string[];
      issuedAt?: number;
      issuer?: string;
    } = {},
  ) => {
    const jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: 'realm-key-1' })
      .setIssuer(options.issuer ?? issuer)
      .setAudience(options.audience ?? 'plexica')
      .setSubject(String(claims.sub ?? 'kc-user-1'))
      .setIssuedAt(options.issuedAt);
    if (options.expiresIn !== null) jwt.setExpirationTime(options.expiresIn ?? '5m');
    return jwt.sign(options.key ?? privateKey);
  };
  return {
    host,
    issuer,
    jwksUri: `${issuer}/protocol/openid-connect/certs`,
    sign,
    counts: () => ({ ...counts }),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

/** The problem document without what differs per request. */
const problemOf = (body: Record<string, unknown>) => {
  const { traceId: _traceId, instance: _instance, ...rest } = body;
  return rest;
};

for (const kind of DATABASES) {
  describe(`external identity via OIDC/JWKS (${kind})`, () => {
    let t: TestApp;
    let idp: Awaited<ReturnType<typeof startIdentityProvider>>;
    let broken: Awaited<ReturnType<typeof startIdentityProvider>>;
    let unlisted: Awaited<ReturnType<typeof startIdentityProvider>>;
    let closed: number;
    let acme: Awaited<ReturnType<TestApp['createTenant']>>;
    let other: Awaited<ReturnType<TestApp['createTenant']>>;
    let third: Awaited<ReturnType<TestApp['createTenant']>>;
    const claims = {
      sub: 'kc-user-1',
      email: 'dana@acme.test',
      email_verified: true,
      realm_access: { roles: ['acme-admin', 'offline_access'] },
    };
    const me = (token: string, tenant?: string) =>
      t.request({ method: 'GET', url: '/api/v1/auth/me', token, ...(tenant && { tenant }) });
    const putProvider = (token: string, body: Record<string, unknown>) =>
      t.request({ method: 'PUT', url: '/api/v1/identity-provider', token, body });

    beforeAll(async () => {
      idp = await startIdentityProvider('tenant-oidc-acme');
      broken = await startIdentityProvider('broken', { jwksStatus: 500 });
      unlisted = await startIdentityProvider('unlisted');
      closed = await closedPort();
      // the peers are on loopback over http: only the operator's allow-list lets them in
      t = await createTestApp(kind, {
        outboundAllowHosts: [idp.host, broken.host, `127.0.0.1:${closed}`],
      });
      acme = await t.createTenant('oidc-acme');
      other = await t.createTenant('oidc-other');
      third = await t.createTenant('oidc-third');
    });
    afterAll(async () => {
      await t?.close();
      await idp?.close();
      await broken?.close();
      await unlisted?.close();
    });

    it('stores the provider with its client secret encrypted and never returns the secret', async () => {
      const put = await putProvider(acme.adminToken, {
        issuer: idp.issuer,
        audience: 'plexica',
        clientId: 'plexica',
        clientSecret: 's3cret-value',
        roleMapping: { 'acme-admin': 'tenant_admin' },
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

    it('runs discovery when the admin saves, and stores the key set URL it found', async () => {
      // issue 9 item 2: before, discovery waited for the first (anonymous) bearer
      expect(idp.counts()).toEqual({ discovery: 1, jwks: 0 });
      const get = await t.request({
        method: 'GET',
        url: '/api/v1/identity-provider',
        token: acme.adminToken,
      });
      expect(get.body).toMatchObject({ jwksUri: null, resolvedJwksUri: idp.jwksUri });
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
      expect(idp.counts()).toEqual({ discovery: 1, jwks: 1 });
    });

    it('follows role changes at the identity provider for the users it created', async () => {
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

    it('refuses a token without exp, and one issued in the future beyond the skew', async () => {
      // issue 9 item 9: a token without exp was accepted, for ever
      const eternal = await me(await idp.sign(claims, { expiresIn: null }));
      expect(eternal.status).toBe(401);
      expect(eternal.body.code).toBe('PLX_AUTH_TOKEN_INVALID');
      expect(eternal.body.detail).toBe('token claim exp is missing or invalid');
      const now = Math.floor(Date.now() / 1000);
      const future = await me(await idp.sign(claims, { issuedAt: now + 3600, expiresIn: '2h' }));
      expect(future.status).toBe(401);
      expect(future.body.detail).toBe('token claim iat is in the future');
      // a few seconds of clock drift between us and the IdP are fine
      expect((await me(await idp.sign(claims, { issuedAt: now + 20 }))).status).toBe(200);
    });

    it('refuses a forged signature and an unknown issuer with the same words', async () => {
      const { privateKey } = await generateKeyPair('RS256');
      const forged = await me(await idp.sign(claims, { key: privateKey }));
      expect(forged.status).toBe(401);
      expect(forged.body.code).toBe('PLX_AUTH_TOKEN_INVALID');
      const stranger = await me(
        await idp.sign(claims, { key: privateKey, issuer: 'https://evil.example/realms/x' }),
      );
      expect(stranger.status).toBe(401);
      expect(problemOf(stranger.body)).toEqual(problemOf(forged.body));
      expect(stranger.body.detail).toBe(UNTRUSTED_TOKEN);
    });

    it('never signs in as an existing account by email, whatever its case or verification', async () => {
      // issue 9 item 1: this token logged in as the tenant admin and rewrote their roles
      const attacker = { sub: 'attacker', email: 'ADMIN@OIDC-ACME.TEST', realm_access: { roles: [] } };
      const unverified = await me(await idp.sign({ ...attacker, email_verified: false }));
      expect(unverified.status).toBe(403);
      expect(unverified.body.code).toBe('PLX_OIDC_EMAIL_NOT_VERIFIED');
      const verified = await me(await idp.sign({ ...attacker, email_verified: true }));
      expect(verified.status).toBe(403);
      expect(verified.body.code).toBe('PLX_OIDC_ACCOUNT_NOT_LINKED');
      const admin = await me(acme.adminToken);
      expect(admin.body.id).toBe(acme.adminId);
      expect(admin.body.roles).toEqual(['tenant_admin']);
      const identities = await t.app.database.db
        .selectFrom('core.user_identities')
        .select('user_id')
        .where('subject', '=', 'attacker')
        .execute();
      expect(identities).toEqual([]);
    });

    it('signs an admin-linked account in with its own roles, and stops after the unlink', async () => {
      const erinToken = await t.createMember('oidc-acme', acme.adminToken, 'erin@acme.test');
      const erin = (await me(erinToken)).body;
      // a member may not link anybody
      const denied = await t.request({
        method: 'POST',
        url: '/api/v1/identity-provider/links',
        token: erinToken,
        body: { userId: acme.adminId, subject: 'kc-erin' },
      });
      expect(denied.status).toBe(403);
      expect(denied.body.code).toBe('PLX_PERMISSION_DENIED');
      const linked = await t.request({
        method: 'POST',
        url: '/api/v1/identity-provider/links',
        token: acme.adminToken,
        body: { userId: erin.id, subject: 'kc-erin' },
      });
      expect(linked.status).toBe(201);
      expect(linked.body).toMatchObject({
        userId: erin.id,
        issuer: idp.issuer,
        subject: 'kc-erin',
        origin: 'link',
      });
      // the IdP would map acme-admin to tenant_admin: a linked account keeps its own roles
      const sso = {
        sub: 'kc-erin',
        email: 'erin@acme.test',
        email_verified: true,
        realm_access: { roles: ['acme-admin'] },
      };
      const res = await me(await idp.sign(sso));
      expect(res.status).toBe(200);
      expect(res.body.id).toBe(erin.id);
      expect(res.body.roles).toEqual(['member']);
      expect((await me(erinToken)).body.roles).toEqual(['member']);
      const twice = await t.request({
        method: 'POST',
        url: '/api/v1/identity-provider/links',
        token: acme.adminToken,
        body: { userId: acme.adminId, subject: 'kc-erin' },
      });
      expect(twice.status).toBe(409);
      expect(twice.body.code).toBe('PLX_OIDC_IDENTITY_LINKED');
      const own = await t.request({
        method: 'GET',
        url: '/api/v1/identity-provider/links',
        token: erinToken,
      });
      expect(own.body.map((l: { subject: string }) => l.subject)).toEqual(['kc-erin']);
      const removed = await t.request({
        method: 'DELETE',
        url: `/api/v1/identity-provider/links/${linked.body.id}`,
        token: acme.adminToken,
      });
      expect(removed.status).toBe(204);
      const after = await me(await idp.sign(sso));
      expect(after.status).toBe(403);
      expect(after.body.code).toBe('PLX_OIDC_ACCOUNT_NOT_LINKED');
    });

    it('lets an account link itself with a token of the tenant’s provider', async () => {
      const fionaToken = await t.createMember('oidc-acme', acme.adminToken, 'fiona@acme.test');
      const fiona = (await me(fionaToken)).body;
      const { privateKey } = await generateKeyPair('RS256');
      const forged = await t.request({
        method: 'POST',
        url: '/api/v1/identity-provider/links/me',
        token: fionaToken,
        body: { token: await idp.sign({ sub: 'kc-fiona' }, { key: privateKey }) },
      });
      expect(forged.status).toBe(401);
      expect(forged.body.code).toBe('PLX_AUTH_TOKEN_INVALID');
      const linked = await t.request({
        method: 'POST',
        url: '/api/v1/identity-provider/links/me',
        token: fionaToken,
        body: { token: await idp.sign({ sub: 'kc-fiona' }) },
      });
      expect(linked.status).toBe(201);
      expect(linked.body).toMatchObject({
        userId: fiona.id,
        subject: 'kc-fiona',
        origin: 'link',
        linkedBy: fiona.id,
      });
      const res = await me(await idp.sign({ sub: 'kc-fiona', realm_access: { roles: ['acme-admin'] } }));
      expect(res.body.id).toBe(fiona.id);
      expect(res.body.roles).toEqual(['member']);
    });

    it('refuses identity provider URLs that reach loopback, private or metadata addresses', async () => {
      // issue 9 item 2: http://127.0.0.1:… was accepted and fetched for anonymous bearers
      const port = unlisted.host.split(':')[1];
      for (const [field, body] of [
        ['issuer', { issuer: unlisted.issuer }],
        ['issuer', { issuer: `https://127.0.0.1:${port}/realms/unlisted` }],
        ['issuer', { issuer: `https://localhost:${port}/realms/unlisted` }],
        ['issuer', { issuer: `https://[::ffff:127.0.0.1]:${port}/realms/unlisted` }],
        ['issuer', { issuer: 'https://169.254.169.254/latest/meta-data' }],
        ['issuer', { issuer: 'https://[fd00:ec2::254]/' }],
        ['issuer', { issuer: 'https://10.0.0.8/realms/x' }],
        ['jwksUri', { issuer: idp.issuer, jwksUri: 'https://192.168.1.10/certs' }],
        ['jwksUri', { issuer: idp.issuer, jwksUri: `http://127.0.0.1:${port}/certs` }],
      ] as const) {
        const res = await putProvider(third.adminToken, { audience: 'plexica-third', ...body });
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(res.body.code).toBe('PLX_OUTBOUND_URL_FORBIDDEN');
        expect(res.body.errors[0].field).toBe(field);
      }
      expect(unlisted.counts()).toEqual({ discovery: 0, jwks: 0 });
    });

    it('says the same about every failed discovery: no port or status oracle', async () => {
      const notFound = await putProvider(third.adminToken, {
        issuer: `http://${idp.host}/realms/nowhere`,
        audience: 'plexica-third',
      });
      const closedPortRes = await putProvider(third.adminToken, {
        issuer: `http://127.0.0.1:${closed}/realms/x`,
        audience: 'plexica-third',
      });
      expect(notFound.status).toBe(422);
      expect(notFound.body.code).toBe('PLX_OIDC_DISCOVERY_FAILED');
      expect(problemOf(closedPortRes.body)).toEqual(problemOf(notFound.body));
    });

    it('never lets an anonymous bearer trigger discovery', async () => {
      const put = await putProvider(third.adminToken, { issuer: broken.issuer, audience: 'plexica-third' });
      expect(put.status).toBe(200);
      expect(broken.counts()).toEqual({ discovery: 1, jwks: 0 });
      const payload = { iss: broken.issuer, aud: 'plexica-third', sub: 'x', exp: 9_999_999_999 };
      for (const header of [{ alg: 'none' }, { alg: 'HS256', kid: 'realm-key-1' }]) {
        const res = await me(`${b64(header)}.${b64(payload)}.${header.alg === 'none' ? '' : 'c2ln'}`);
        expect(res.status).toBe(401);
        expect(res.body.detail).toBe(UNTRUSTED_TOKEN);
      }
      expect(broken.counts()).toEqual({ discovery: 1, jwks: 0 });
    });

    it('backs off after a failed key set fetch: 20 anonymous requests, one fetch', async () => {
      const { privateKey } = await generateKeyPair('RS256');
      const bodies = [];
      for (let i = 0; i < 20; i += 1) {
        const res = await me(
          await broken.sign({ sub: `anon-${i}` }, { key: privateKey, audience: 'plexica-third' }),
        );
        expect(res.status).toBe(401);
        bodies.push(problemOf(res.body));
      }
      expect(broken.counts().jwks).toBe(1);
      // the key set answered 500: the client hears what any bad token hears
      expect(new Set(bodies.map((b) => JSON.stringify(b))).size).toBe(1);
      expect(bodies[0]).toMatchObject({ code: 'PLX_AUTH_TOKEN_INVALID', detail: UNTRUSTED_TOKEN });
    });

    it('lets two tenants trust one issuer with their own audiences, and tells B nothing of A', async () => {
      // issue 9 item 13: B setting A's issuer got "Issuer is already used by another tenant"
      const shared = await putProvider(other.adminToken, { issuer: idp.issuer, audience: 'plexica-other' });
      expect(shared.status).toBe(200);
      const inOther = await me(
        await idp.sign(
          { ...claims, sub: 'kc-other-1', email: 'olga@other.test' },
          { audience: 'plexica-other' },
        ),
      );
      expect(inOther.status).toBe(200);
      expect(inOther.body.tenant).toEqual({ id: other.id, slug: 'oidc-other' });
      const inAcme = await me(await idp.sign(claims));
      expect(inAcme.body.tenant).toEqual({ id: acme.id, slug: 'oidc-acme' });

      const squat = await putProvider(other.adminToken, { issuer: idp.issuer, audience: 'plexica' });
      expect(squat.status).toBe(409);
      expect(squat.body.code).toBe('PLX_OIDC_ISSUER_TAKEN');
      const text = JSON.stringify(squat.body);
      for (const secret of [acme.id, 'oidc-acme', 'another tenant']) expect(text).not.toContain(secret);
      // the squat changed nothing in B's own configuration
      const kept = await t.request({
        method: 'GET',
        url: '/api/v1/identity-provider',
        token: other.adminToken,
      });
      expect(kept.body.audience).toBe('plexica-other');

      // a token for both audiences belongs to neither; an unknown audience reads like an unknown issuer
      const both = await me(await idp.sign(claims, { audience: ['plexica', 'plexica-other'] }));
      const unknown = await me(await idp.sign(claims, { audience: 'plexica-nobody' }));
      expect(both.status).toBe(401);
      expect(both.body.detail).toBe(UNTRUSTED_TOKEN);
      expect(problemOf(unknown.body)).toEqual(problemOf(both.body));
    });

    it('keeps the realm’s tokens inside their tenant', async () => {
      const crossing = await me(await idp.sign(claims), 'oidc-other');
      expect(crossing.status).toBe(403);
      expect(crossing.body.code).toBe('PLX_TENANT_HEADER_FORBIDDEN');
    });

    it('refuses the realm’s tokens while the tenant is suspended, and those issued before it after', async () => {
      const root = await t.adminToken();
      // issued before the suspension (iat has whole seconds: keep clear of the suspension's second)
      const before = await idp.sign(claims, { issuedAt: Math.floor(Date.now() / 1000) - 5 });
      expect((await me(before)).status).toBe(200);
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
      // issue 9 item 12: a resume does not bring back what the suspension ended
      const stale = await me(before);
      expect(stale.status).toBe(401);
      expect(stale.body.code).toBe('PLX_AUTH_SESSION_REVOKED');
      expect((await me(await idp.sign(claims))).status).toBe(200);
    });
  });

  describe(`migration identity/0002 carries external subjects forward (${kind})`, () => {
    it('keeps IdP-created users signing in and parks email-attached password accounts', async () => {
      const dataDir = await mkdtemp(path.join(os.tmpdir(), 'plexica-oidc-migration-'));
      let scratch: Awaited<ReturnType<typeof createScratchDatabase>> | undefined;
      if (kind === 'pglite')
        await cp(inject('pgliteTemplate'), path.join(dataDir, 'pgdata'), { recursive: true });
      else scratch = await createScratchDatabase(PG_ADMIN_URL, 'plx_test');
      const database = await openDatabase(
        loadConfig(
          {},
          { dataDir, databaseUrl: scratch?.url, masterKey: [TEST_MASTER_KEY], logLevel: 'silent' },
        ),
      );
      const { db } = database;
      try {
        const mine = CORE_MIGRATIONS.filter((m) => m.id === 'identity/0002_external_identities');
        expect(mine).toHaveLength(1);
        await db.transaction().execute((trx) =>
          migrateSchema(
            trx,
            'core',
            CORE_MIGRATIONS.filter((m) => !mine.includes(m)),
          ),
        );
        const tenant = await db
          .insertInto('core.tenants')
          .values({ slug: 'legacy', name: 'legacy', settings: '{}' })
          .returning('id')
          .executeTakeFirstOrThrow();
        // a row as the released version wrote it: no resolved key set column yet
        await db
          .insertInto('core.identity_providers')
          .values({
            tenant_id: tenant.id,
            issuer: 'https://idp.example/realms/legacy',
            audience: 'plexica',
            jwks_uri: 'https://idp.example/certs',
            email_claim: 'email',
            roles_claim: 'realm_access.roles',
            role_mapping: '{}',
            default_roles: '["member"]',
          } as never)
          .execute();
        const user = (email: string, subject: string | null, password: string | null) =>
          db
            .insertInto('core.users')
            .values({
              tenant_id: tenant.id,
              email,
              email_normalized: email,
              external_subject: subject,
              password_hash: password,
              roles: '["member"]',
            })
            .returning('id')
            .executeTakeFirstOrThrow();
        const jit = await user('jit@legacy.test', 'sub-jit', null);
        const attached = await user('admin@legacy.test', 'sub-attached', '$argon2id$x');
        await user('local@legacy.test', null, '$argon2id$y');

        await db.transaction().execute((trx) => migrateSchema(trx, 'core', mine));

        const identities = await db
          .selectFrom('core.user_identities')
          .select(['user_id', 'issuer', 'subject', 'origin'])
          .orderBy('subject')
          .execute();
        expect(identities).toEqual([
          {
            user_id: attached.id,
            issuer: 'https://idp.example/realms/legacy',
            subject: 'sub-attached',
            origin: 'legacy',
          },
          { user_id: jit.id, issuer: 'https://idp.example/realms/legacy', subject: 'sub-jit', origin: 'jit' },
        ]);
        const provider = await db
          .selectFrom('core.identity_providers')
          .select('resolved_jwks_uri')
          .executeTakeFirstOrThrow();
        expect(provider.resolved_jwks_uri).toBe('https://idp.example/certs');
        // the issuer alone is no longer unique: another tenant may pin its own audience
        const second = await db
          .insertInto('core.tenants')
          .values({ slug: 'legacy-2', name: 'legacy-2', settings: '{}' })
          .returning('id')
          .executeTakeFirstOrThrow();
        await db
          .insertInto('core.identity_providers')
          .values({
            tenant_id: second.id,
            issuer: 'https://idp.example/realms/legacy',
            audience: 'plexica-2',
            email_claim: 'email',
            roles_claim: 'realm_access.roles',
            role_mapping: '{}',
            default_roles: '[]',
          })
          .execute();
      } finally {
        await database.close();
        await scratch?.drop();
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  });
}
