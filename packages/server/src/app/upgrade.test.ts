import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DATABASES } from '../../test/engines.js';
import { PG_ADMIN_URL, TEST_MASTER_KEY } from '../../test/harness.js';
import { createScratchDatabase } from '../../test/scratch-database.js';
import { loadConfig } from '../config/index.js';
import { type App, CORE_MIGRATIONS, createApp, TENANT_MIGRATIONS } from './create-app.js';

const fixture = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../test/fixtures/release-0.1.sql',
);

// issue 10 item 5: a database made by the released version (before migration ids were
// prefixed by module) is migrated forward by the current code, without loss
for (const kind of DATABASES) {
  describe(`upgrading a database made by the first release (${kind})`, () => {
    let app: App;
    let dataDir: string;
    let drop: (() => Promise<void>) | undefined;

    beforeAll(async () => {
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'plexica-upgrade-'));
      const dump = await readFile(fixture, 'utf8');
      let databaseUrl: string | undefined;
      if (kind === 'pglite') {
        await cp(inject('pgliteTemplate'), path.join(dataDir, 'pgdata'), { recursive: true });
        const raw = await PGlite.create(path.join(dataDir, 'pgdata'));
        await raw.exec(dump);
        await raw.close();
      } else {
        const scratch = await createScratchDatabase(PG_ADMIN_URL, 'plx_upgrade');
        databaseUrl = scratch.url;
        drop = scratch.drop;
        const client = new pg.Client({ connectionString: databaseUrl });
        await client.connect();
        await client.query(dump);
        await client.end();
      }
      app = await createApp(
        loadConfig(
          {},
          {
            dataDir,
            databaseUrl,
            masterKey: [TEST_MASTER_KEY],
            logLevel: 'silent',
            port: 0,
            host: '127.0.0.1',
          },
        ),
      );
    });
    afterAll(async () => {
      await app?.close();
      await drop?.();
      await rm(dataDir, { recursive: true, force: true });
    });

    const call = async (method: 'GET' | 'POST', url: string, token?: string, body?: unknown) => {
      const res = await app.server.inject({
        method,
        url,
        headers: token ? { authorization: `Bearer ${token}` } : {},
        ...(body !== undefined && { payload: body as object }),
      });
      return { status: res.statusCode, body: res.json() };
    };

    it('records every migration under its module id, none under the old ones, and applied the new ones', async () => {
      const core = await sql<{ id: string }>`select id from core.plexica_migrations order by id`.execute(
        app.database.db,
      );
      expect(core.rows.map((r) => r.id).sort()).toEqual(CORE_MIGRATIONS.map((m) => m.id).sort());
      const tenant = await sql<{ id: string }>`select id from tenant_released.plexica_migrations`.execute(
        app.database.db,
      );
      expect(tenant.rows.map((r) => r.id).sort()).toEqual(TENANT_MIGRATIONS.map((m) => m.id).sort());
      // the tables of migrations released after the fixture exist; the unused placeholders are gone
      const tables = await sql<{ name: string }>`
        select table_schema || '.' || table_name as name from information_schema.tables
        where table_schema in ('core', 'tenant_released')`.execute(app.database.db);
      const names = tables.rows.map((r) => r.name);
      expect(names).toEqual(
        expect.arrayContaining(['core.user_identities', 'tenant_released.signed_uploads']),
      );
      expect(names).not.toContain('core.plugins');
    });

    it('keeps users, passwords, roles, keys, files, jobs and schedules of the release', async () => {
      const login = await call('POST', '/api/v1/auth/login', undefined, {
        email: 'admin@released.test',
        password: 'released-admin-1',
        tenant: 'released',
      });
      expect(login.status).toBe(200);
      const token = login.body.accessToken as string;
      const users = await call('GET', '/api/v1/users', token);
      expect(users.body.items.map((u: { email: string }) => u.email).sort()).toEqual([
        'admin@released.test',
        'member@released.test',
      ]);
      const roles = await call('GET', '/api/v1/roles', token);
      expect(roles.body.map((r: { key: string }) => r.key)).toContain('auditor');
      const keys = await call('GET', '/api/v1/api-keys', token);
      expect(keys.body.map((k: { name: string }) => k.name)).toEqual(['ci']);
      const file = await call('GET', '/api/v1/storage/info/docs/kept.txt', token);
      expect(file).toMatchObject({ status: 200, body: { path: 'docs/kept.txt', size: 14 } });
      const jobs = await call('GET', '/api/v1/jobs', token);
      expect(jobs.body.items).toMatchObject([{ type: 'fixture.noop', status: 'pending', data: { n: 1 } }]);
      const schedules = await call('GET', '/api/v1/jobs/schedules', token);
      expect(schedules.body).toMatchObject([{ type: 'fixture.noop', cron: '@yearly' }]);
      // the super admin, and secrets (signing keys) encrypted by the release, still work
      const root = await call('POST', '/api/v1/auth/login', undefined, {
        email: 'root@plexica.test',
        password: 'root-password-123',
      });
      expect(root.status).toBe(200);
      expect((await call('GET', '/api/v1/tenants', root.body.accessToken)).body.total).toBe(1);
    });
  });
}
