// npm runs this after `npm install` / `npm ci` in the checkout: build once, so that
// `npm start` need not. Plain JavaScript: it may run on whatever Node runs npm.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

if (existsSync('node_modules/.bin/tsc')) {
  execFileSync('npm', ['run', 'build'], { stdio: 'inherit' });
} else if (!existsSync('packages/server/dist/main.js')) {
  // `npm ci --omit=dev` installs no TypeScript, so there is nothing to build with
  process.stderr.write(
    'prepare: TypeScript is not installed (--omit=dev?) and Plexica is not built: ' +
      'install with npm ci, which builds, then npm prune --omit=dev\n',
  );
  process.exit(1);
}
