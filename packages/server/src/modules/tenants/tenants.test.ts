import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, DATABASES, type TestApp } from '../../../test/harness.js';
import { TENANT_MIGRATIONS } from '../../app/create-app.js';
import type { MigrationDb } from '../../infra/database/migrator.js';
import { createTenantsService } from './service.js';

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

const schemaExists = async (t: TestApp, schema: string) => {
  const result = await sql<{
    n: number;
  }>`select count(*)::int as n from information_schema.schemata where schema_name = ${schema}`.execute(
    t.app.database.db,
  );
  return result.rows[0]?.n === 1;
};

for (const kind of DATABASES) {
  describe(`tenant lifecycle (${kind})`, () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp(kind, { tenantRetentionDays: 7 });
    });
    afterAll(async () => {
      await t?.close();
    });

    it('suspends, resumes, soft-deletes and purges after the retention window', async () => {
      const token = await t.adminToken();
      const tenant = await t.createTenant('life-cycle');
      const suspended = await t.request({
        method: 'PATCH',
        url: `/api/v1/tenants/${tenant.id}`,
        token,
        body: { status: 'suspended' },
      });
      expect(suspended.status).toBe(200);
      expect(suspended.body.status).toBe('suspended');
      const relogin = await t.request({
        method: 'POST',
        url: '/api/v1/auth/login',
        body: { email: 'admin@life-cycle.test', password: 'tenant-admin-pw-1', tenant: 'life-cycle' },
      });
      expect(relogin.status).toBe(403);
      expect(relogin.body.code).toBe('PLX_TENANT_SUSPENDED');
      await t.request({
        method: 'PATCH',
        url: `/api/v1/tenants/${tenant.id}`,
        token,
        body: { status: 'active' },
      });
      // resumed: users log in again (the suspension ended their sessions)
      const fresh = await t.login('admin@life-cycle.test', 'tenant-admin-pw-1', 'life-cycle');
      expect((await t.request({ method: 'GET', url: '/api/v1/users', token: fresh })).status).toBe(200);

      const deleted = await t.request({ method: 'DELETE', url: `/api/v1/tenants/${tenant.id}`, token });
      expect(deleted.status).toBe(200);
      expect(deleted.body.status).toBe('deleted');
      const retention =
        new Date(deleted.body.purgeAfter).getTime() - new Date(deleted.body.deletedAt).getTime();
      expect(retention).toBe(7 * 86_400_000);
      const again = await t.request({
        method: 'PATCH',
        url: `/api/v1/tenants/${tenant.id}`,
        token,
        body: { name: 'x' },
      });
      expect(again.status).toBe(410);
      expect(again.body.code).toBe('PLX_TENANT_DELETED');
      expect((await t.request({ method: 'GET', url: '/api/v1/users', token: fresh })).status).toBe(410);
      const twice = await t.request({ method: 'DELETE', url: `/api/v1/tenants/${tenant.id}`, token });
      expect(twice.status).toBe(409);
      expect(twice.body.code).toBe('PLX_TENANT_STATE_CONFLICT');

      // inside the window nothing is purged; after it, schema and rows are gone
      expect(await t.app.services.tenants.purgeExpired(new Date())).toEqual([]);
      expect(await schemaExists(t, 'tenant_life_cycle')).toBe(true);
      const purged = await t.app.services.tenants.purgeExpired(new Date(Date.now() + 8 * 86_400_000));
      expect(purged).toEqual(['life-cycle']);
      expect(await schemaExists(t, 'tenant_life_cycle')).toBe(false);
      const gone = await t.request({ method: 'GET', url: `/api/v1/tenants/${tenant.id}`, token });
      expect(gone.status).toBe(404);
      const users = await t.app.database.db
        .selectFrom('core.users')
        .select('id')
        .where('tenant_id', '=', tenant.id)
        .execute();
      expect(users).toEqual([]);
    });

    it('ends every session at suspension: tokens from before stay dead after resume, API keys wait', async () => {
      const root = await t.adminToken();
      const tenant = await t.createTenant('suspend-sessions');
      const pair = await t.request({
        method: 'POST',
        url: '/api/v1/auth/login',
        body: { email: 'admin@suspend-sessions.test', password: 'tenant-admin-pw-1', tenant: tenant.slug },
      });
      expect(pair.status).toBe(200);
      const key = await t.request({
        method: 'POST',
        url: '/api/v1/api-keys',
        token: tenant.adminToken,
        body: { name: 'ops', permissions: ['core:user:read'] },
      });
      expect(key.status).toBe(201);
      const users = (token: string) => t.request({ method: 'GET', url: '/api/v1/users', token });
      const refresh = () =>
        t.request({
          method: 'POST',
          url: '/api/v1/auth/refresh',
          body: { refreshToken: pair.body.refreshToken },
        });
      const status = (value: 'active' | 'suspended') =>
        t.request({
          method: 'PATCH',
          url: `/api/v1/tenants/${tenant.id}`,
          token: root,
          body: { status: value },
        });

      expect((await status('suspended')).status).toBe(200);
      const keyWhileSuspended = await users(key.body.secret);
      expect(keyWhileSuspended.status).toBe(403);
      expect(keyWhileSuspended.body.code).toBe('PLX_TENANT_SUSPENDED');
      expect((await status('active')).status).toBe(200);

      for (const token of [tenant.adminToken, pair.body.accessToken]) {
        const res = await users(token);
        expect(res.status).toBe(401);
        expect(res.body.code).toBe('PLX_AUTH_SESSION_REVOKED');
      }
      const refreshed = await refresh();
      expect(refreshed.status).toBe(401);
      expect(refreshed.body.code).toBe('PLX_AUTH_SESSION_REVOKED');
      // API keys are kept: refused while suspended, working again after resume
      expect((await users(key.body.secret)).status).toBe(200);
      const fresh = await t.login('admin@suspend-sessions.test', 'tenant-admin-pw-1', tenant.slug);
      expect((await users(fresh)).status).toBe(200);

      // both changes are in the tenant's own audit log, by the super admin
      const log = await t.request({ method: 'GET', url: '/api/v1/audit-events?limit=100', token: fresh });
      const actions = log.body.map((e: { action: string }) => e.action);
      expect(actions).toContain('tenant.resumed');
      const suspended = log.body.find((e: { action: string }) => e.action === 'tenant.suspended');
      expect(suspended).toMatchObject({
        actorType: 'user',
        credential: 'access_token',
        targetType: 'tenant',
        targetId: tenant.id,
        data: { changes: { status: { from: 'active', to: 'suspended' } } },
      });
      expect(log.body.find((e: { action: string }) => e.action === 'auth.sessions_revoked')).toMatchObject({
        targetType: 'tenant',
        targetId: tenant.id,
        data: { reason: 'tenant_suspended', sessions: 2 },
      });
    });

    it('rejects a taken slug with 409 and a second tenant with another slug works', async () => {
      const token = await t.adminToken();
      await t.createTenant('taken-slug');
      const dup = await t.request({
        method: 'POST',
        url: '/api/v1/tenants',
        token,
        body: { slug: 'taken-slug', name: 'x' },
      });
      expect(dup.status).toBe(409);
      expect(dup.body.code).toBe('PLX_TENANT_SLUG_TAKEN');
    });

    it('leaves no half-made tenant when provisioning fails', async () => {
      const failing = createTenantsService({
        db: t.app.database.db,
        logger: t.app.logger,
        tenantMigrations: TENANT_MIGRATIONS,
        retentionDays: 1,
        hooks: [
          {
            async provision() {
              throw new Error('bucket creation failed');
            },
          },
        ],
      });
      await expect(failing.create({ slug: 'half-made', name: 'x' })).rejects.toMatchObject({
        code: 'PLX_TENANT_PROVISIONING_FAILED',
      });
      expect(await t.app.services.tenants.find('half-made')).toBeUndefined();
      expect(await schemaExists(t, 'tenant_half_made')).toBe(false);
    });

    it('migrates each tenant in its own transaction: one failure leaves the others migrated', async () => {
      await t.createTenant('mig-good');
      await t.createTenant('mig-bad');
      const migrations = [
        ...TENANT_MIGRATIONS,
        {
          id: '9999_probe',
          async up(db: MigrationDb, schema: string) {
            await sql`create table ${sql.id(schema, 'probe')} (id int)`.execute(db);
            if (schema === 'tenant_mig_bad') throw new Error('boom');
          },
        },
      ];
      const service = createTenantsService({
        db: t.app.database.db,
        logger: t.app.logger,
        tenantMigrations: migrations,
        retentionDays: 1,
      });
      const result = await service.migrateAll();
      expect(result.failed.map((f) => f.slug)).toEqual(['mig-bad']);
      const probe = async (schema: string) =>
        (
          await sql<{
            n: number;
          }>`select count(*)::int as n from information_schema.tables where table_schema = ${schema} and table_name = 'probe'`.execute(
            t.app.database.db,
          )
        ).rows[0]?.n;
      expect(await probe('tenant_mig_good')).toBe(1);
      expect(await probe('tenant_mig_bad')).toBe(0);
    });
  });
}
