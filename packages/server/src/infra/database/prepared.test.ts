import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DATABASES } from '../../../test/engines.js';
import { PG_ADMIN_URL } from '../../../test/harness.js';
import { createScratchDatabase } from '../../../test/scratch-database.js';
import { type Database, openDatabase, preparedPerSchema, prepareQuery } from './index.js';

for (const kind of DATABASES) {
  describe(`prepared statements (${kind})`, () => {
    let database: Database;
    let dataDir: string;
    let scratch: Awaited<ReturnType<typeof createScratchDatabase>> | undefined;
    beforeAll(async () => {
      dataDir = await mkdtemp(path.join(os.tmpdir(), 'plexica-prepared-'));
      if (kind === 'pglite')
        await cp(inject('pgliteTemplate'), path.join(dataDir, 'pgdata'), { recursive: true });
      else scratch = await createScratchDatabase(PG_ADMIN_URL, 'plx_prepared');
      database = await openDatabase({ databaseUrl: scratch?.url, databasePoolSize: 2, dataDir });
      const { db } = database;
      for (const schema of ['one', 'two']) {
        await sql`create schema ${sql.id(schema)}`.execute(db);
        await sql`create table ${sql.id(schema, 'items')} (id int primary key, name text, kind text)`.execute(
          db,
        );
        await sql`insert into ${sql.id(schema, 'items')} values (1, ${`${schema}-a`}, 'x'), (2, ${`${schema}-b`}, 'y')`.execute(
          db,
        );
      }
    });
    afterAll(async () => {
      await database?.close();
      await scratch?.drop();
      await rm(dataDir, { recursive: true, force: true });
    });

    it('runs as a named statement, planned once per connection, with arguments in any SQL order', async () => {
      const { db } = database;
      // the SQL takes `kind` before `id`; the arguments come id first
      const byIdAndKind = prepareQuery('test.item', (id: number, kind: string) =>
        db
          .withSchema('one')
          .selectFrom('items' as never)
          .select(['name' as never])
          .where(sql<boolean>`kind = ${kind} and id = ${id} and name <> ${'constant'}`),
      );
      const names = await db.transaction().execute(async (trx) => {
        const first = await byIdAndKind.execute(trx, 1, 'x');
        const second = await byIdAndKind.execute(trx, 2, 'y');
        const none = await byIdAndKind.execute(trx, 2, 'x');
        const prepared = await sql<{ name: string }>`select name from pg_prepared_statements`.execute(trx);
        return { first, second, none, prepared: prepared.rows.map((r) => r.name) };
      });
      expect(names.first).toEqual([{ name: 'one-a' }]);
      expect(names.second).toEqual([{ name: 'one-b' }]);
      expect(names.none).toEqual([]);
      expect(names.prepared).toContain('test.item');
    });

    it('keeps one statement per tenant schema', async () => {
      const { db } = database;
      const byId = preparedPerSchema(
        'test.by_schema',
        (schema) => (id: number) =>
          db
            .withSchema(schema)
            .selectFrom('items' as never)
            .select(['name' as never])
            .where(sql<boolean>`id = ${id}`),
      );
      expect(await byId('one').execute(db, 2)).toEqual([{ name: 'one-b' }]);
      expect(await byId('two').execute(db, 2)).toEqual([{ name: 'two-b' }]);
      expect(byId('one')).toBe(byId('one'));
      expect(byId('one').name).not.toBe(byId('two').name);
    });

    it('refuses an argument that does not reach the SQL as a parameter', () => {
      expect(() =>
        prepareQuery('test.unused', (_id: number) =>
          database.db.selectFrom('one.items' as never).selectAll(),
        ),
      ).toThrow(/not a parameter/);
    });
  });
}
