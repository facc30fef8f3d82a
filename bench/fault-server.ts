import { appendFileSync } from 'node:fs';
import { createApp } from '../packages/server/src/app/create-app.js';
import { exitOnSignals } from '../packages/server/src/app/shutdown.js';
import type { PlexicaConfig } from '../packages/server/src/config/index.js';

/**
 * A `plexica start` for the fault suite: the config comes over IPC, a job type
 * `fault.work` (each run appended to `marker`) is defined, and the process
 * exits on SIGTERM as the CLI does. Says `{ address }` when it listens.
 */
const { config, marker, jobMs } = await new Promise<{ config: PlexicaConfig; marker: string; jobMs: number }>(
  (resolve) => process.once('message', resolve as never),
);
const app = await createApp(config);
app.services.jobs.define({
  type: 'fault.work',
  concurrency: 8,
  tenantConcurrency: 8,
  async handler(run) {
    appendFileSync(marker, `start ${Date.now()} ${run.id}\n`);
    await new Promise((r) => setTimeout(r, jobMs));
    appendFileSync(marker, `done ${Date.now()} ${run.id}\n`);
    return null;
  },
});
const address = await app.start();
exitOnSignals(app);
process.send?.({ address });
