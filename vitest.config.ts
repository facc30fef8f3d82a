import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts'],
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
