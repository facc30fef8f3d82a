import { defineConfig } from 'vitest/config';

export default defineConfig({
  // @plexica/sdk from its sources (its `@plexica/source` export), so a test importing the CLI never
  // runs a stale or missing packages/sdk/dist. The rest are Vitest's defaults: without `module`,
  // which Vitest also hands to Node and which would pick ESM builds Node cannot load (@aws-sdk)
  ssr: { resolve: { conditions: ['@plexica/source', 'node', 'development|production'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'packages/*/src/**/*.test.ts'],
    globalSetup: ['packages/server/test/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 2,
    // a hang guard, not a speed check: cli.test.ts's tenant/migrate/rotate test spawns six
    // CLI processes, ~23 s on a quiet 2-core machine, and went over 30 s on a shared one
    // (on Node 20 as on 24)
    testTimeout: 90_000,
    hookTimeout: 90_000,
    teardownTimeout: 30_000,
  },
});
