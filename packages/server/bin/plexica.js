#!/usr/bin/env node
// Checked before the program is imported: on an older Node the program fails in
// ways that never name the Node version (on Node 20 here, argon2's prebuilt addon,
// which npm keeps when it installs under Node 24, crashes the process with SIGSEGV).
// Keep this file plain JavaScript that any Node can parse.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const found = process.versions.node;
const [major = 0, minor = 0] = found.split('.').map(Number);
// package.json "engines": ^22.12 || >=24 (pg-boss needs 22.12; 23 is not an LTS line)
if (!(major === 22 ? minor >= 12 : major >= 24)) {
  process.stderr.write(
    `Plexica needs Node 22.12+ or 24 (found ${found})\n` +
      '(npm start and npx plexica in a checkout with its devDependencies use the Node 24 that npm install put in node_modules)\n',
  );
  process.exit(1);
}

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(
    `Plexica is not built (${fileURLToPath(main)} is missing): run npm run build in the checkout\n`,
  );
  process.exit(1);
}
await import(main.href);
