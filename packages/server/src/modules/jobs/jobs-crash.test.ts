import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../../../test/harness.js';
import { enqueuingApp, JOB_CRASH_DRIVERS, markerLines, worker } from '../../../test/job-workers.js';

// Two processes cannot share the embedded database (its data dir is locked), so a worker
// that dies and another that takes over is a PostgreSQL deployment.
for (const driver of JOB_CRASH_DRIVERS)
  describe(`a worker killed mid-job (seed 000 edge case 4), ${driver === 'postgres' ? 'pg-boss' : 'BullMQ'}`, () => {
    let t: TestApp;
    const children: ChildProcess[] = [];
    beforeAll(async () => {
      // this process only enqueues: it knows the type but runs no workers
      t = await enqueuingApp(driver, 'plx-crash');
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
      while (!markerLines(marker).some((l) => l.startsWith(`start ${doomed.pid}`))) {
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
      expect(markerLines(marker)).toEqual([
        `start ${doomed.pid} ${jobId}`,
        `start ${rescuer.pid} ${jobId}`,
        `done ${rescuer.pid} ${jobId}`,
      ]);
    }, 90_000);
  });
