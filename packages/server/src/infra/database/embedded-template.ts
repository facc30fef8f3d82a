import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The pre-initialised embedded database the build makes
 * (`scripts/pglite-template.mjs`: PGlite's initdb, dumped as a tarball), when
 * `pgdata` is yet to be created and the template was made by the PGlite
 * installed. A first start loads it instead of running initdb (~3 s and
 * ~300 MiB of RSS that would stay). Undefined: start as PGlite does by itself.
 */
export async function firstStartTemplate(pgdata: string): Promise<string | undefined> {
  if (await exists(path.join(pgdata, 'PG_VERSION'))) return undefined;
  // three levels below the package in src/ and in dist/ alike
  const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../dist/pglite-template');
  const stamp = await readFile(path.join(dir, 'template.json'), 'utf8').then(
    (text) => JSON.parse(text) as { pglite?: string },
    () => undefined,
  );
  if (!stamp || stamp.pglite !== (await installedPgliteVersion())) return undefined;
  const tarball = path.join(dir, 'pgdata.tar.gz');
  return (await exists(tarball)) ? tarball : undefined;
}

async function installedPgliteVersion(): Promise<string | undefined> {
  // the package does not export its package.json: find it above its entry file
  const entry = fileURLToPath(import.meta.resolve('@electric-sql/pglite'));
  const root = entry.slice(0, entry.lastIndexOf(`${path.sep}dist${path.sep}`));
  const json = await readFile(path.join(root, 'package.json'), 'utf8').catch(() => undefined);
  return json ? (JSON.parse(json) as { version?: string }).version : undefined;
}

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );
