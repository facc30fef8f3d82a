// Part of the build: a pre-initialised embedded database (PGlite's initdb, run once here),
// which a first embedded start copies instead of running initdb itself (~3 s and ~300 MiB
// of RSS that stays). Rebuilt only when missing or made by another PGlite version.
// Plain JavaScript: it runs before and without the TypeScript build.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const outDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'pglite-template');
const pgliteEntry = fileURLToPath(import.meta.resolve('@electric-sql/pglite'));
const pgliteJson = path.join(
  pgliteEntry.slice(0, pgliteEntry.lastIndexOf(`${path.sep}dist${path.sep}`)),
  'package.json',
);
const { version } = JSON.parse(await readFile(pgliteJson, 'utf8'));

const stamp = path.join(outDir, 'template.json');
const current = await readFile(stamp, 'utf8').then(JSON.parse, () => undefined);
if (current?.pglite !== version) {
  const { PGlite } = await import('@electric-sql/pglite');
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'plexica-pglite-template-'));
  try {
    const db = await PGlite.create(path.join(scratch, 'pgdata'));
    const dump = await db.dumpDataDir('gzip');
    await db.close();
    await mkdir(outDir, { recursive: true });
    await writeFile(path.join(outDir, 'pgdata.tar.gz'), Buffer.from(await dump.arrayBuffer()));
    await writeFile(stamp, `${JSON.stringify({ pglite: version })}\n`);
    process.stdout.write(`pglite-template: built for PGlite ${version}\n`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
