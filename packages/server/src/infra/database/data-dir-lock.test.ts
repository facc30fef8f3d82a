import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { openDatabase } from './index.js';

const holderScript = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../test/fixtures/embedded-holder.ts',
);

/** Starts a process that opens the embedded database in `dataDir` and keeps it. */
async function holder(dataDir: string): Promise<ChildProcess> {
  const child = fork(holderScript, [dataDir], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`holder exited with ${code} before it was ready`)));
  });
  return child;
}

const killed = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });

describe('embedded data dir lock after a crash (issue 11 item 1)', () => {
  let dataDir: string;
  const children: ChildProcess[] = [];
  const config = () => ({ databaseUrl: undefined, databasePoolSize: 1, dataDir });
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'plexica-lock-'));
    await cp(inject('pgliteTemplate'), path.join(dataDir, 'pgdata'), { recursive: true });
  });
  afterEach(() => {
    for (const child of children.splice(0)) child.kill('SIGKILL');
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('a live owner in another process still refuses a second opener, naming its pid', async () => {
    const child = await holder(dataDir);
    children.push(child);
    await expect(openDatabase(config())).rejects.toMatchObject({
      code: 'PLX_DATABASE_UNAVAILABLE',
      message: expect.stringContaining(`is in use by another plexica process (pid ${child.pid} on`),
    });
    await killed(child);
  });

  it('reclaims a kill -9ed owner’s lock and stale socket at once, with its writes', async () => {
    for (let round = 0; round < 3; round++) {
      const child = await holder(dataDir);
      children.push(child);
      await killed(child);
      // what the crash left: the lock file naming a dead pid, and the socket file
      expect(existsSync(path.join(dataDir, 'plexica.pid'))).toBe(true);
      expect(existsSync(path.join(dataDir, 'run', '.s.PGSQL.5432'))).toBe(true);
      // the very next start succeeds (no 10 s staleness wait, no EADDRINUSE)
      const database = await openDatabase(config());
      try {
        const { rows } = await sql<{ pid: number }>`select pid from crash_probe`.execute(database.db);
        expect(rows.map((r) => r.pid)).toContain(child.pid);
      } finally {
        await database.close();
      }
      expect(existsSync(path.join(dataDir, 'plexica.pid'))).toBe(false);
    }
  });

  it('reclaims a lock recorded before a reboot, whatever runs under that pid now', async () => {
    await writeFile(
      path.join(dataDir, 'plexica.pid'),
      JSON.stringify({
        pid: process.pid,
        hostname: os.hostname(),
        bootId: 'a-boot-before-this-one',
        startTicks: '1',
        token: 'before-reboot',
      }),
    );
    const database = await openDatabase(config());
    await database.close();
  });

  it('leaves a lock it cannot judge (no readable owner) in place', async () => {
    await writeFile(path.join(dataDir, 'plexica.pid'), 'not json');
    await expect(openDatabase(config())).rejects.toMatchObject({ code: 'PLX_DATABASE_UNAVAILABLE' });
    await rm(path.join(dataDir, 'plexica.pid'));
  });
});
