import { link, readFile, rename, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PlexicaError } from '../errors.js';

/**
 * Who holds a data dir: enough to tell, on the same machine, whether that
 * process still runs. `startTicks` (field 22 of /proc/<pid>/stat) tells a
 * reused PID from the owner (a container restarted as PID 1 again); `bootId`
 * tells a lock left before a reboot.
 */
interface Owner {
  pid: number;
  hostname: string;
  bootId: string | undefined;
  startTicks: string | undefined;
  token: string;
}

/** How often a holder touches its lock file; another machine sharing the dir waits for `FOREIGN_STALE_MS` of silence. */
const HEARTBEAT_MS = 5_000;
const FOREIGN_STALE_MS = 15_000;

const readOptional = (file: string) => readFile(file, 'utf8').catch(() => undefined);

async function startTicksOf(pid: number): Promise<string | undefined> {
  const text = await readOptional(`/proc/${pid}/stat`);
  // the command name (field 2) may hold spaces and parentheses: count from the last ")"
  return text?.slice(text.lastIndexOf(')') + 2).split(' ')[19];
}

async function currentOwner(): Promise<Owner> {
  return {
    pid: process.pid,
    hostname: os.hostname(),
    bootId: (await readOptional('/proc/sys/kernel/random/boot_id'))?.trim(),
    startTicks: await startTicksOf(process.pid),
    token: `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
  };
}

/**
 * Whether the recorded owner is certainly gone. On this machine the PID says
 * it (gone, or reused by a process started at another time, or recorded
 * before a reboot); from another machine sharing the dir only silence does:
 * no heartbeat for `FOREIGN_STALE_MS`.
 */
async function ownerIsDead(recorded: Owner, me: Owner, lockFile: string): Promise<boolean> {
  if (recorded.hostname !== me.hostname) {
    const touched = await stat(lockFile).catch(() => undefined);
    return touched !== undefined && Date.now() - touched.mtimeMs > FOREIGN_STALE_MS;
  }
  if (recorded.bootId && me.bootId && recorded.bootId !== me.bootId) return true;
  try {
    process.kill(recorded.pid, 0);
  } catch (err) {
    // EPERM: the process exists under another user
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
  if (recorded.startTicks === undefined) return false;
  const ticks = await startTicksOf(recorded.pid);
  return ticks !== undefined && ticks !== recorded.startTicks;
}

const parseOwner = (text: string | undefined): Owner | undefined => {
  if (!text) return undefined;
  try {
    const owner = JSON.parse(text) as Owner;
    return Number.isInteger(owner.pid) && typeof owner.hostname === 'string' ? owner : undefined;
  } catch {
    return undefined;
  }
};

const inUse = (dataDir: string, owner: Owner | undefined, cause?: unknown) =>
  new PlexicaError('PLX_DATABASE_UNAVAILABLE', {
    detail: `data dir ${dataDir} is in use by another plexica process${owner ? ` (pid ${owner.pid} on ${owner.hostname})` : ''}`,
    cause,
  });

/**
 * Locks `dataDir` for this process: `<dataDir>/plexica.pid`, created whole
 * and atomically (written under a private name, then hard-linked into place,
 * which fails when it exists) and holding the owner's PID. A lock whose owner
 * is dead (kill -9, OOM kill, power loss, a reboot) is reclaimed at once, so a
 * supervisor's restart 100 ms later succeeds; a live owner still refuses a
 * second process.
 * @returns the release function
 * @throws PLX_DATABASE_UNAVAILABLE while another live process holds the dir
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const lockFile = path.join(dataDir, 'plexica.pid');
  const me = await currentOwner();
  const draft = `${lockFile}.${me.token}`;
  await writeFile(draft, JSON.stringify(me), { mode: 0o600 });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(draft, lockFile);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const recorded = parseOwner(await readOptional(lockFile));
        // a file without a readable owner is not ours to judge (it is never written partially)
        if (attempt > 0 || !recorded || !(await ownerIsDead(recorded, me, lockFile)))
          throw inUse(dataDir, recorded, err);
        // Move the dead owner's file aside (one of two racing starters wins the rename) and
        // check that what moved is the dead record read above, not a newer owner's.
        const aside = `${lockFile}.dead-${me.token}`;
        await rename(lockFile, aside);
        const moved = parseOwner(await readOptional(aside));
        if (moved?.token !== recorded.token) {
          await link(aside, lockFile).catch(() => undefined);
          await unlink(aside).catch(() => undefined);
          throw inUse(dataDir, moved);
        }
        await unlink(aside);
      }
    }
  } finally {
    await rm(draft, { force: true });
  }
  const heartbeat = setInterval(() => {
    const now = new Date();
    utimes(lockFile, now, now).catch(() => undefined);
  }, HEARTBEAT_MS);
  heartbeat.unref();
  let released: Promise<void> | undefined;
  return () => {
    released ??= (async () => {
      clearInterval(heartbeat);
      // only our own record: never remove a lock another process reclaimed from us
      if (parseOwner(await readOptional(lockFile))?.token === me.token) await unlink(lockFile);
    })();
    return released;
  };
}
