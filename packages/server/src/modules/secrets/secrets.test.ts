import { cp, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestApp, TEST_MASTER_KEY, type TestApp } from '../../../test/harness.js';
import { createApp } from '../../app/create-app.js';
import { ConfigError, loadConfig } from '../../config/index.js';
import { type MasterKey, masterKeyId, resolveMasterKeys } from './master-key.js';
import { createSecretsService } from './service.js';

const key = (byte: number): MasterKey => {
  const material = Buffer.alloc(32, byte);
  return { id: masterKeyId(material), key: material };
};
const silent = pino({ level: 'silent' });

describe('secrets service (envelope encryption)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp('pglite');
  });
  afterAll(async () => {
    await t?.close();
  });

  it('round-trips, with a fresh data key and nonce every time', async () => {
    const secrets = createSecretsService(t.app.database.db, [key(1)]);
    const one = await secrets.create({ name: 'a', tenantId: null, value: 'hunter2' });
    const two = await secrets.create({ name: 'b', tenantId: null, value: 'hunter2' });
    expect(await secrets.read(one)).toBe('hunter2');
    const rows = await t.app.database.db
      .selectFrom('core.secrets')
      .selectAll()
      .where('id', 'in', [one, two])
      .execute();
    expect(rows[0]!.ciphertext).not.toBe(rows[1]!.ciphertext);
    expect(rows[0]!.wrapped_key).not.toBe(rows[1]!.wrapped_key);
    expect(rows[0]!.key_id).toBe(key(1).id);
    await secrets.update(one, 'correct horse');
    expect(await secrets.read(one)).toBe('correct horse');
  });

  it('detects tampering and refuses ciphertext moved to another row', async () => {
    const secrets = createSecretsService(t.app.database.db, [key(1)]);
    const one = await secrets.create({ name: 'a', tenantId: null, value: 'first' });
    const two = await secrets.create({ name: 'b', tenantId: null, value: 'second' });
    const db = t.app.database.db;
    const rowOne = await db
      .selectFrom('core.secrets')
      .selectAll()
      .where('id', '=', one)
      .executeTakeFirstOrThrow();
    // copy row one's sealed material onto row two: GCM's associated data binds it to its id
    await db
      .updateTable('core.secrets')
      .set({ wrapped_key: rowOne.wrapped_key, ciphertext: rowOne.ciphertext })
      .where('id', '=', two)
      .execute();
    await expect(secrets.read(two)).rejects.toMatchObject({ code: 'PLX_SECRET_UNDECRYPTABLE' });
    const flipped = Buffer.from(rowOne.ciphertext, 'base64');
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 1;
    await db
      .updateTable('core.secrets')
      .set({ ciphertext: flipped.toString('base64') })
      .where('id', '=', one)
      .execute();
    await expect(secrets.read(one)).rejects.toMatchObject({ code: 'PLX_SECRET_UNDECRYPTABLE' });
    await secrets.remove(one);
    await secrets.remove(two);
  });

  it('rotates: re-wraps every data key under the newest master key, with progress', async () => {
    const old = createSecretsService(t.app.database.db, [key(3)]);
    const ids = await Promise.all(
      ['x', 'y', 'z'].map((v) => old.create({ name: v, tenantId: null, value: `value-${v}` })),
    );
    // the other keys wrapped secrets of the tests above and of the app itself
    const testKey = {
      id: masterKeyId(Buffer.from(TEST_MASTER_KEY, 'base64')),
      key: Buffer.from(TEST_MASTER_KEY, 'base64'),
    };
    const missing = await createSecretsService(t.app.database.db, [key(4), key(3)]).rotate();
    expect(missing.failed.map((f) => f.keyId)).toEqual(expect.arrayContaining([key(1).id, testKey.id]));
    expect(missing.failed.every((f) => f.keyId !== key(3).id)).toBe(true);
    const both = createSecretsService(t.app.database.db, [key(4), key(3), key(1), testKey]);
    const progress: [number, number][] = [];
    const result = await both.rotate((done, total) => progress.push([done, total]));
    expect(result.failed).toEqual([]);
    expect(result.rewrapped).toBe(result.total);
    expect(result.total).toBeGreaterThanOrEqual(2);
    expect(progress.at(-1)).toEqual([result.total, result.total]);
    const newOnly = createSecretsService(t.app.database.db, [key(4)]);
    for (const [i, id] of ids.entries()) expect(await newOnly.read(id)).toBe(`value-${['x', 'y', 'z'][i]}`);
    const oldOnly = createSecretsService(t.app.database.db, [key(3)]);
    await expect(oldOnly.read(ids[0]!)).rejects.toMatchObject({ code: 'PLX_SECRET_UNDECRYPTABLE' });
    expect((await both.rotate()).total).toBe(0);
  });
});

describe('configuration', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 8080,
      role: 'all',
      databaseUrl: undefined,
      rateLimitUser: 100,
      accessTokenTtlSeconds: 900,
    });
    expect(config.dataDir).toBe(path.resolve('.plexica'));
  });

  it('names every bad key in one error', () => {
    const load = () =>
      loadConfig({
        PLEXICA_PORT: 'abc',
        PLEXICA_ROLE: 'sideways',
        PLEXICA_DATABASE_URL: 'http://db:5432/x',
        PLEXICA_FOO: '1',
        PLEXICA_MIGRATE_ON_START: 'maybe',
      });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(
      expect.objectContaining({
        problems: expect.arrayContaining([
          'PLEXICA_PORT: must be an integer from 0 to 65535 (got "abc")',
          expect.stringMatching(/^PLEXICA_ROLE: must be one of all, api, worker, scheduler/),
          expect.stringMatching(/^PLEXICA_DATABASE_URL: must be a postgres: or postgresql:\/\/ URL/),
          'PLEXICA_FOO: unknown setting',
          expect.stringMatching(/^PLEXICA_MIGRATE_ON_START: must be true or false/),
        ]),
      }),
    );
  });

  it('never echoes a database URL that fails to parse (it may hold a password)', () => {
    expect(() => loadConfig({ PLEXICA_DATABASE_URL: 'postgres://u:hunter2@[bad' })).toThrowError(
      /must be a valid URL/,
    );
    try {
      loadConfig({ PLEXICA_DATABASE_URL: 'postgres://u:hunter2@[bad' });
    } catch (err) {
      expect((err as Error).message).not.toContain('hunter2');
    }
  });

  describe('master key', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'plexica-keys-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('is required with an external database', async () => {
      const config = loadConfig({}, { dataDir: dir, databaseUrl: 'postgres://x@127.0.0.1/x' });
      await expect(resolveMasterKeys(config, silent)).rejects.toThrowError(/PLEXICA_MASTER_KEY: required/);
    });

    it('is generated once into the data dir (0600) in embedded mode, then reused', async () => {
      const config = loadConfig({}, { dataDir: dir });
      const [first] = await resolveMasterKeys(config, silent);
      const file = path.join(dir, 'keys', 'master.key');
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      const [second] = await resolveMasterKeys(config, silent);
      expect(second!.id).toBe(first!.id);
      expect(Buffer.from((await readFile(file, 'utf8')).trim(), 'base64')).toHaveLength(32);
    });

    it('refuses a key of the wrong length and takes several keys newest first', async () => {
      await expect(
        resolveMasterKeys(loadConfig({}, { masterKey: ['c2hvcnQ='] }), silent),
      ).rejects.toThrowError(/32 random bytes/);
      const keys = await resolveMasterKeys(
        loadConfig({
          PLEXICA_MASTER_KEY: `${key(5).key.toString('base64')},${key(6).key.toString('base64')}`,
        }),
        silent,
      );
      expect(keys.map((k) => k.id)).toEqual([key(5).id, key(6).id]);
    });
    it('refuses to start when the key file is lost while secrets encrypted with it are stored', async () => {
      const dataDir = await mkdtemp(path.join(os.tmpdir(), 'plexica-lost-key-'));
      try {
        await cp(inject('pgliteTemplate'), path.join(dataDir, 'pgdata'), { recursive: true });
        const config = loadConfig({}, { dataDir, logLevel: 'silent' });
        // the first start generates the key and stores the token signing key under it
        await (await createApp(config)).close();
        await rm(path.join(dataDir, 'keys', 'master.key'));
        await expect(createApp(config)).rejects.toThrowError(
          /master\.key is missing, but \d+ secret\(s\) encrypted with it are stored: restore the file/,
        );
        await expect(stat(path.join(dataDir, 'keys', 'master.key'))).rejects.toMatchObject({
          code: 'ENOENT',
        });
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  });
});
