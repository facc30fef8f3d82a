import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** The built program, as an installed `plexica` runs it. */
export const PLEXICA_BIN = path.join(REPO_ROOT, 'packages/server/bin/plexica.js');

/** Builds the program when a test runs before `npm run build` did. */
export async function ensureBuilt(): Promise<void> {
  if (!existsSync(path.join(REPO_ROOT, 'packages/server/dist/main.js'))) {
    await run('npm', ['run', 'build'], { cwd: REPO_ROOT });
  }
}

/** Runs `plexica <args>` with only `env` (and PATH) set. @returns its exit code and output */
export async function runPlexica(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [PLEXICA_BIN, ...args], {
      env: { PATH: process.env.PATH, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
