import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASES, JOB_ENGINES, REDIS_URL } from '../../../test/engines.js';
import { createTestApp, type TestApp } from '../../../test/harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Starts a worker process on the same PostgreSQL database. */
async function worker(t: TestApp, marker: string, hang: boolean): Promise<ChildProcess> {
  const child = fork(path.join(here, '../../../test/fixtures/job-worker.ts'), {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`worker exited with ${code} before it was ready`)));
    child.send({ config: t.config, marker, hang });
  });
  return child;
}

// pg-boss needs PostgreSQL here; BullMQ runs when Redis is among the engines
const JOB_CRASH_DRIVERS = DATABASES.includes('postgres')
  ? (['postgres', ...(JOB_ENGINES.some((e) => !e.transactional) ? ['redis' as const] : [])] as const)
  : [];

const lines = (marker: string) => readFileSync(marker, 'utf8').trim().split('\n').filter(Boolean);

// Two processes cannot share the embedded database (its data dir is locked), so a worker
// that dies and another that takes over is a PostgreSQL deployment.
for (const driver of JOB_CRASH_DRIVERS)
  describe(`a worker killed mid-job (seed 000 edge case 4), ${driver === 'postgres' ? 'pg-boss' : 'BullMQ'}`, () => {
    let t: TestApp;
    const children: ChildProcess[] = [];
    beforeAll(async () => {
      t = await createTestApp('postgres', {
        jobsLeaseSeconds: 10,
        jobsPollIntervalSeconds: 1,
        jobsDriver: driver,
        ...(driver === 'redis' && {
          redisUrl: REDIS_URL,
          jobsRedisPrefix: `plx-crash-${randomBytes(4).toString('hex')}`,
        }),
      });
      // this process only enqueues: it knows the type but runs no workers
      t.app.services.jobs.define({ type: 'test.crash', maxAttempts: 1, handler: async () => null });
    });
    afterAll(async () => {
      for (const child of children) child.kill('SIGKILL');
      await t?.close();
    });

    it('runs the job again on another worker after the lease, exactly once more, without using an attempt', async () => {
      const marker = path.join(t.config.dataDir, 'crash-marker.log');
      writeFileSync(marker, '');
      const tenant = await t.createTenant(`crash-${driver}`);
      const doomed = await worker(t, marker, true);
      children.push(doomed);
      const res = await t.request({
        method: 'POST',
        url: '/api/v1/jobs',
        token: tenant.adminToken,
        body: { type: 'test.crash' },
      });
      expect(res.status).toBe(201);
      const jobId = res.body.id as string;

      const deadline = Date.now() + 20_000;
      while (!lines(marker).some((l) => l.startsWith(`start ${doomed.pid}`))) {
        if (Date.now() > deadline) throw new Error('the first worker never started the job');
        await new Promise((r) => setTimeout(r, 50));
      }
      doomed.kill('SIGKILL');
      const running = await t.request({
        method: 'GET',
        url: `/api/v1/jobs/${jobId}`,
        token: tenant.adminToken,
      });
      expect(running.body.status).toBe('running');

      const rescuer = await worker(t, marker, false);
      children.push(rescuer);
      let job = running.body;
      while (job.status !== 'completed') {
        if (Date.now() > deadline + 40_000)
          throw new Error(`job still ${job.status}: ${JSON.stringify(job)}`);
        await new Promise((r) => setTimeout(r, 100));
        job = (await t.request({ method: 'GET', url: `/api/v1/jobs/${jobId}`, token: tenant.adminToken }))
          .body;
      }
      // maxAttempts is 1: had the crash counted as an attempt, the job would be dead instead
      expect(job).toMatchObject({
        status: 'completed',
        attempts: 1,
        dead: false,
        result: { by: rescuer.pid },
      });
      await new Promise((r) => setTimeout(r, 3_000)); // a third delivery would show up by now
      expect(lines(marker)).toEqual([
        `start ${doomed.pid} ${jobId}`,
        `start ${rescuer.pid} ${jobId}`,
        `done ${rescuer.pid} ${jobId}`,
      ]);
    }, 90_000);
  });
