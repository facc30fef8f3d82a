import { startS3rver } from '../packages/server/test/s3-fixture.js';

// Runs s3rver for bench/storage.ts in a process of its own.
const s3 = await startS3rver();
process.send?.({ endpoint: s3.endpoint, config: s3.config() });
process.once('SIGTERM', () => {
  void s3.close().then(() => process.exit(0));
});
