import { spawn } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ensureBuilt, PLEXICA_BIN, runPlexica } from '../../test/cli-runner.js';

/** What a newcomer meets in the first hour: each mistake answered in terms of the setting to change. */
describe('plexica CLI: errors that name the setting, and admin recovery', () => {
  let dataDir: string;
  let taken: Server;
  let takenPort: number;
  const plexica = (args: string[], env: Record<string, string> = {}) =>
    runPlexica(args, { PLEXICA_DATA_DIR: dataDir, PLEXICA_LOG_LEVEL: 'warn', ...env });

  beforeAll(async () => {
    await ensureBuilt();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'plexica-first-hour-'));
    await cp(inject('pgliteTemplate'), path.join(dataDir, 'pgdata'), { recursive: true });
    taken = createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => taken.once('listening', resolve));
    takenPort = (taken.address() as { port: number }).port;
  });
  afterAll(async () => {
    taken?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('says what --port got, and suggests the setting a typo meant', async () => {
    const port = await plexica(['start', '--port', 'abc']);
    expect(port.code).toBe(1);
    expect(port.stderr).toContain('(got abc)');
    const typo = await plexica(['start'], { PLEXICA_PROT: '8080' });
    expect(typo.code).toBe(1);
    expect(typo.stderr).toContain('PLEXICA_PROT: unknown setting (did you mean PLEXICA_PORT?)');
  });

  it('names PLEXICA_PORT on a port clash, and prints no password it would then lose', async () => {
    const clash = await plexica(['start'], { PLEXICA_PORT: String(takenPort), PLEXICA_HOST: '127.0.0.1' });
    expect(clash.code).toBe(1);
    expect(clash.stderr).toContain(`port ${takenPort} on 127.0.0.1 is in use`);
    expect(clash.stderr).toContain('PLEXICA_PORT');
    // the super admin made for this start was taken back with the failed listen: none exists
    expect(clash.stderr).not.toContain('password:');
    const reset = await plexica(['admin', 'reset-password', 'admin@plexica.local']);
    expect(reset.code).toBe(1);
    expect(reset.stderr).toContain('PLX_USER_NOT_FOUND');
  });

  it('names PLEXICA_DATABASE_URL when the database cannot be reached', async () => {
    const missing = await plexica(['migrate'], {
      PLEXICA_DATABASE_URL: 'postgres://postgres:secret-pw@127.0.0.1:5432/plx_no_such_database',
    });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(
      'PLEXICA_DATABASE_URL: cannot connect to postgres://postgres:***@127.0.0.1',
    );
    expect(missing.stderr).toContain('database "plx_no_such_database" does not exist');
    expect(missing.stderr).not.toContain('secret-pw');
    const refused = await plexica(['migrate'], { PLEXICA_DATABASE_URL: 'postgres://postgres@127.0.0.1:1/x' });
    expect(refused.stderr).toContain('nothing listens at 127.0.0.1:1');
    const role = await plexica(['migrate'], {
      PLEXICA_DATABASE_URL: 'postgres://plx_no_such_role@127.0.0.1:5432/test',
    });
    expect(role.stderr).toContain('role "plx_no_such_role" does not exist');
  });

  /** Runs `plexica start` until its output matches `until`, then stops it. @returns all it printed */
  const startUntil = (env: Record<string, string>, until: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [PLEXICA_BIN, 'start', '--port', '0'], {
        env: { PATH: process.env.PATH, PLEXICA_DATA_DIR: dataDir, PLEXICA_LOG_LEVEL: 'info', ...env },
      });
      let output = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (until.test(output)) child.kill('SIGTERM');
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('error', reject);
      child.on('exit', () => {
        clearTimeout(timer);
        resolve(output);
      });
    });

  it('resets a lost super admin password, and says when PLEXICA_ADMIN_PASSWORD is ignored', async () => {
    const first = await startUntil({}, /plexica started/);
    const printed = /password: (\S+)/.exec(first)?.[1];
    expect(printed).toBeDefined();

    const reset = await plexica(['admin', 'reset-password', 'admin@plexica.local']);
    expect(reset.code).toBe(0);
    const fresh = /new password for admin@plexica.local: (\S+)/.exec(reset.stdout)?.[1];
    expect(fresh).toBeDefined();
    expect(fresh).not.toBe(printed);

    const again = await startUntil({ PLEXICA_ADMIN_PASSWORD: 'chosen-too-late-1' }, /plexica started/);
    expect(again).toContain('PLEXICA_ADMIN_PASSWORD is set but a super admin exists already');
    expect(again).toContain('plexica admin reset-password');
  });
});
