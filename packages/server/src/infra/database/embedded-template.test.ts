import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { firstStartTemplate } from './embedded-template.js';
import { openDatabase } from './index.js';

describe('first embedded start from the pre-initialised database (the build makes it)', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'plexica-first-start-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('is offered for a data dir without a database, never for one that has it', async () => {
    const fresh = path.join(root, 'fresh');
    expect(await firstStartTemplate(path.join(fresh, 'pgdata'))).toMatch(
      /pglite-template[/\\]pgdata\.tar\.gz$/,
    );
    const existing = path.join(root, 'existing', 'pgdata');
    await cp(inject('pgliteTemplate'), existing, { recursive: true });
    expect(await firstStartTemplate(existing)).toBeUndefined();
  });

  it('starts a working database from it, which opens again as it was', async () => {
    const dataDir = path.join(root, 'loaded');
    const first = await openDatabase({ databaseUrl: undefined, databasePoolSize: 1, dataDir });
    await sql`create table kept (v text)`.execute(first.db);
    await sql`insert into kept values ('here')`.execute(first.db);
    await first.close();
    expect(await firstStartTemplate(path.join(dataDir, 'pgdata'))).toBeUndefined();
    const again = await openDatabase({ databaseUrl: undefined, databasePoolSize: 1, dataDir });
    const rows = await sql<{ v: string }>`select v from kept`.execute(again.db);
    await again.close();
    expect(rows.rows).toEqual([{ v: 'here' }]);
  });
});
