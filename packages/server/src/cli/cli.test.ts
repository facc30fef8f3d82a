import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ensureBuilt, runPlexica } from '../../test/cli-runner.js';

const keyA = Buffer.alloc(32, 1).toString('base64');
const keyB = Buffer.alloc(32, 2).toString('base64');

describe('plexica CLI (built program, embedded database)', () => {
  let dataDir: string;
  const plexica = (args: string[], env: Record<string, string> = {}) =>
    runPlexica(args, { PLEXICA_DATA_DIR: dataDir, PLEXICA_ADMIN_PASSWORD: 'cli-admin-pw-1', ...env });

  beforeAll(async () => {
    await ensureBuilt();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'plexica-cli-'));
    await cp(inject('pgliteTemplate'), path.join(dataDir, 'pgdata'), { recursive: true });
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('prints a fresh master key', async () => {
    const { code, stdout } = await plexica(['keys:generate']);
    expect(code).toBe(0);
    expect(Buffer.from(stdout.trim(), 'base64')).toHaveLength(32);
  });

  it('creates and lists tenants, migrates, and rotates the master key', async () => {
    const created = await plexica(['tenants', 'create', 'cli-acme', '--name', 'CLI Acme'], {
      PLEXICA_MASTER_KEY: keyA,
    });
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({
      slug: 'cli-acme',
      name: 'CLI Acme',
      status: 'active',
    });

    const bad = await plexica(['tenants', 'create', '../x'], { PLEXICA_MASTER_KEY: keyA });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('PLX_TENANT_SLUG_INVALID');

    const migrated = await plexica(['migrate'], { PLEXICA_MASTER_KEY: keyA });
    expect(migrated.stdout).toContain('core: 0 migration(s) applied; tenants: 1 migrated, 0 failed');

    const rotated = await plexica(['secrets', 'rotate'], { PLEXICA_MASTER_KEY: `${keyB},${keyA}` });
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toMatch(/re-wrapped 1 of 1 secret\(s\)/);

    // the old key is no longer needed: the signing key decrypts under the new one alone
    const listed = await plexica(['tenants', 'list'], { PLEXICA_MASTER_KEY: keyB });
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain('cli-acme');
    const oldOnly = await plexica(['tenants', 'list'], { PLEXICA_MASTER_KEY: keyA });
    expect(oldOnly.code).toBe(1);
    expect(oldOnly.stderr).toContain('PLX_SECRET_UNDECRYPTABLE');
  }, 90_000); // five fresh processes, each opening the embedded database

  it('refuses bad configuration naming the key', async () => {
    const result = await plexica(['start'], { PLEXICA_PORT: 'abc', PLEXICA_ROLE: 'sideways' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('PLEXICA_PORT: must be an integer');
    expect(result.stderr).toContain('PLEXICA_ROLE: must be one of all, api, worker, scheduler');
  });
});
