import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestApp } from '../../../test/harness.js';
import { enqueuingApp, JOB_CRASH_DRIVERS, markerLines, worker } from '../../../test/job-workers.js';

const FLOOD = 24;

// issue 11 item 2: the dead worker's slots must come back with its lease
for (const driver of JOB_CRASH_DRIVERS)
  describe(`a worker killed with its tenant at the limit, mid-flood, ${driver === 'postgres' ? 'pg-boss' : 'BullMQ'}`, () => {
    let t: TestApp;
    const children: ChildProcess[] = [];
    beforeAll(async () => {
      t = await enqueuingApp(driver, 'plx-flood');
    });
    afterAll(async () => {
      for (const child of children) child.kill('SIGKILL');
      await t?.close();
    });

    it('runs every job of the tenant once the dead worker’s lease runs out', async () => {
      const marker = path.join(t.config.dataDir, 'flood-marker.log');
      writeFileSync(marker, '');
      const tenant = await t.createTenant(`flood-${driver}`);
      const doomed = await worker(t, marker, true);
      children.push(doomed);
      const res = await t.request({
        method: 'POST',
        url: '/api/v1/jobs/bulk',
        token: tenant.adminToken,
        body: { jobs: Array.from({ length: FLOOD }, () => ({ type: 'test.crash' })) },
      });
      expect(res.status).toBe(201);

      // the tenant's limit (tenantConcurrency 2) is held by jobs that never end
      const started = Date.now();
      while (markerLines(marker).filter((l) => l.startsWith(`start ${doomed.pid}`)).length < 2) {
        if (Date.now() - started > 20_000) throw new Error('the first worker never took two jobs');
        await new Promise((r) => setTimeout(r, 50));
      }
      doomed.kill('SIGKILL');
      children.push(await worker(t, marker, false));

      const completed = async () =>
        (
          await t.request({
            method: 'GET',
            url: '/api/v1/jobs?status=completed&limit=1',
            token: tenant.adminToken,
          })
        ).body.total as number;
      // lease 10 s (+ the engine's check interval): far less than this unless the tenant starves
      const deadline = Date.now() + 50_000;
      let done = await completed();
      while (done < FLOOD) {
        if (Date.now() > deadline)
          throw new Error(`only ${done} of ${FLOOD} jobs completed: the tenant starves`);
        await new Promise((r) => setTimeout(r, 250));
        done = await completed();
      }
      const finished = markerLines(marker).filter((l) => l.startsWith('done'));
      expect(new Set(finished.map((l) => l.split(' ')[2])).size).toBe(FLOOD);
      expect(finished).toHaveLength(FLOOD);
    }, 120_000);
  });
