import { coldStart } from './cold-start.js';
import { eventLoop } from './event-loop.js';
import { events } from './events.js';
import { hotPath } from './hot-path.js';
import { hotPathWrites } from './hot-path-writes.js';
import { httpLatency } from './http-latency.js';
import { jobs } from './jobs.js';
import { removeTemplate } from './lib.js';
import { provisioning } from './provisioning.js';
import { realtime, realtimeResume, realtimeUser } from './realtime.js';
import { search } from './search.js';
import { storage } from './storage.js';
import { webhooks } from './webhooks.js';

/** `npm run bench [-- name]`: runs every benchmark, or those whose name contains the argument. */
const benchmarks: Record<string, () => Promise<void>> = {
  'http-latency': httpLatency,
  provisioning,
  'event-loop': eventLoop,
  storage,
  jobs,
  'hot-path': hotPath,
  'hot-path-writes': hotPathWrites,
  'cold-start': coldStart,
  search,
  events,
  realtime,
  'realtime-resume': realtimeResume,
  'realtime-user': realtimeUser,
  webhooks,
};
const filter = process.argv[2];
for (const [name, run] of Object.entries(benchmarks)) {
  if (filter && !name.includes(filter)) continue;
  console.log(`\n▶ ${name}`);
  await run();
}
await removeTemplate();
process.exit(0);
