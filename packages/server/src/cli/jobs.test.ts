import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../../test/harness.js';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const bin = path.join(root, 'packages/server/bin/plexica.js');

describe('plexica jobs (built CLI against a running server)', () => {
  let t: TestApp;
  let url: string;
  let token: string;
  const plexica = async (args: string[]) => {
    try {
      const { stdout, stderr } = await run(
        process.execPath,
        [bin, 'jobs', '--url', url, '--token', token, ...args],
        {
          env: { PATH: process.env.PATH },
        },
      );
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  beforeAll(async () => {
    // `npm test` builds first; a bare vitest run builds here (as cli.test.ts does). The built
    // CLI imports @plexica/sdk's dist, so a missing SDK build counts too
    const built = ['packages/server/dist/main.js', 'packages/sdk/dist/index.js'];
    if (!built.every((file) => existsSync(path.join(root, file))))
      await run('npm', ['run', 'build'], { cwd: root });
    t = await createTestApp('pglite', { jobsPollIntervalSeconds: 1 });
    t.app.services.jobs.define({
      type: 'test.steps',
      async handler(job) {
        for (const percent of [25, 50, 75]) {
          await job.updateProgress(percent);
          await new Promise((resolve) => setTimeout(resolve, 350));
        }
        return { steps: 3 };
      },
    });
    t.app.services.jobs.define({
      type: 'test.boom',
      maxAttempts: 1,
      handler: async () => {
        throw new Error('boom');
      },
    });
    await t.app.services.jobs.start();
    url = await t.app.server.listen({ port: 0, host: '127.0.0.1' });
    token = (await t.createTenant('cli-jobs')).adminToken;
  }, 120_000);
  afterAll(async () => {
    await t?.close();
  });

  it('enqueues and follows a job with a progress bar to completion', async () => {
    const { code, stdout, stderr } = await plexica(['enqueue', 'test.steps', '--watch']);
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/enqueued [0-9a-f-]{36}/);
    expect(stdout).toContain('completed: {"steps":3}');
    const listed = await plexica(['list', '--type', 'test.steps']);
    expect(listed.stdout).toContain('completed');
    expect(listed.stdout).toContain('1 of 1');
  });

  it('exits 1 with the last error when the job fails, and names refused calls', async () => {
    const failed = await plexica(['enqueue', 'test.boom', '--watch']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('failed: boom');
    const id = /enqueued ([0-9a-f-]{36})/.exec(failed.stdout)![1]!;
    const cancel = await plexica(['cancel', id]);
    expect(cancel.code).toBe(1);
    expect(cancel.stderr).toContain('PLX_JOB_NOT_CANCELLABLE');
    const unknown = await plexica(['enqueue', 'nope.nothing']);
    expect(unknown.stderr).toContain('PLX_JOB_TYPE_UNKNOWN');
    const badJson = await plexica(['enqueue', 'test.steps', '--data', '{nope']);
    expect(badJson.stderr).toContain('--data is not valid JSON');
    const badStatus = await plexica(['list', '--status', 'done']);
    expect(badStatus.code).toBe(1);
    expect(badStatus.stderr).toContain('Allowed choices are pending, running, completed, failed, cancelled');
  });
});
