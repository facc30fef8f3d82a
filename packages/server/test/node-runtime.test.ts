import { execFile } from 'node:child_process';
import { accessSync, constants, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import argon2 from 'argon2';
import { isNativeAccelerationEnabled } from 'msgpackr';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = path.join(root, 'packages/server/bin/plexica.js');
const nvmrc = readFileSync(path.join(root, '.nvmrc'), 'utf8').trim();

/** package.json "engines": ^22.12 || >=24, as the bin checks it */
const ENGINES = '^22.12 || >=24';
const supported = (version: string) => {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major === 22 ? minor >= 12 : major >= 24;
};

/**
 * Every `node` on the PATH that npm did not put there: the machine's own, the
 * one a user who runs an installed `plexica` command gets.
 */
const machineNodes = () => {
  const modules = realpathSync(path.join(root, 'node_modules'));
  const found = new Set<string>();
  for (const dir of [...(process.env.PATH ?? '').split(path.delimiter), '/usr/bin', '/usr/local/bin']) {
    const candidate = path.join(dir, 'node');
    try {
      accessSync(candidate, constants.X_OK);
    } catch {
      continue; // not in this PATH entry
    }
    const real = realpathSync(candidate);
    if (!real.startsWith(modules + path.sep)) found.add(real);
  }
  return [...found];
};

describe('Node runtime', () => {
  it('runs the suite on the Node line .nvmrc names (the node devDependency, first on the PATH of npm scripts)', () => {
    expect(process.versions.node.split('.')[0], `running on ${process.execPath}`).toBe(nvmrc);
    expect(supported(process.versions.node)).toBe(true);
  });

  it('declares the supported lines the bin checks, in the root and the server package', () => {
    for (const file of ['package.json', 'packages/server/package.json']) {
      const { engines } = JSON.parse(readFileSync(path.join(root, file), 'utf8')) as {
        engines?: { node?: string };
      };
      expect(engines?.node, file).toBe(ENGINES);
    }
  });

  it('loads the native addons (N-API prebuilds) on this Node', async () => {
    const hash = await argon2.hash('runtime-check');
    expect(await argon2.verify(hash, 'runtime-check')).toBe(true);
    // msgpackr (BullMQ) silently falls back to JavaScript when msgpackr-extract does not load
    expect(isNativeAccelerationEnabled).toBe(true);
  });

  it("the bin refuses the machine's older Node with a message naming the versions, and runs on a supported one", async () => {
    for (const node of [process.execPath, ...machineNodes()]) {
      const { stdout: version } = await run(node, ['-p', 'process.versions.node']);
      const result = await run(node, [bin, '--help']).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (err: { code: number; stdout: string; stderr: string }) => err,
      );
      if (supported(version.trim())) {
        expect(result.code, `${node} ${version}`).toBe(0);
        expect(result.stdout).toMatch(/^Usage: plexica/);
      } else {
        expect(result.code, `${node} ${version}`).toBe(1);
        expect(result.stderr).toContain(`Plexica needs Node 22.12+ or 24 (found ${version.trim()})`);
      }
    }
  });
});
