import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASES } from '../../../test/engines.js';
import { until } from '../../../test/event-bus.js';
import { createTestApp, type TestApp } from '../../../test/harness.js';
import { type App, createApp } from '../../app/create-app.js';
import { systemContext, toTenantRef } from '../../context.js';

// two instances on one database: PostgreSQL (an embedded data dir belongs to one process)
describe.skipIf(!DATABASES.includes('postgres'))('cross-process job cancel over the bus', () => {
  let worker: TestApp;
  let api: App | undefined;
  beforeAll(async () => {
    worker = await createTestApp('postgres', { eventsPollIntervalMs: 50, jobsPollIntervalSeconds: 1 });
  });
  afterAll(async () => {
    await api?.close();
    await worker?.close();
  });

  it('aborts the handler on the instance that runs the job when another instance cancels it', async () => {
    let started = false;
    let abortedWith: unknown;
    worker.app.services.jobs.define({
      type: 'test.hang',
      maxAttempts: 1,
      handler: (run) =>
        new Promise((_, reject) => {
          started = true;
          run.signal.addEventListener('abort', () => {
            abortedWith = run.signal.reason;
            reject(run.signal.reason);
          });
        }),
    });
    await worker.app.start();
    // the other instance serves the API only: it runs no handler
    api = await createApp({ ...worker.config, role: 'api', port: 0 });
    api.services.jobs.define({ type: 'test.hang', maxAttempts: 1, handler: async () => null });
    await api.start();
    const tenant = await worker.createTenant('acme');
    const ctx = systemContext('cancel-test', toTenantRef({ id: tenant.id, slug: 'acme', settings: {} }));
    const job = await api.services.jobs.enqueue(ctx, { type: 'test.hang' });
    await until(() => started, 'the job to start on the worker instance');
    const cancelled = await api.services.jobs.cancel(ctx, job.id);
    expect(cancelled.status).toBe('cancelled');
    await until(() => abortedWith !== undefined, 'the abort on the worker instance');
    expect(abortedWith).toBe('cancelled');
    expect((await worker.app.services.jobs.getStatus(ctx, job.id)).status).toBe('cancelled');
  });
});
