import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DATABASES, JOB_ENGINES, REDIS_URL } from './engines.js';
import { createTestApp, type TestApp } from './harness.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * The engines a worker crash is tried on: two processes cannot share the
 * embedded database (its data dir is locked), so this is a PostgreSQL
 * deployment, with pg-boss, and BullMQ when Redis is among the engines.
 */
export const JOB_CRASH_DRIVERS = DATABASES.includes('postgres')
  ? (['postgres', ...(JOB_ENGINES.some((e) => !e.transactional) ? ['redis' as const] : [])] as const)
  : [];
export type JobCrashDriver = (typeof JOB_CRASH_DRIVERS)[number];

/** An app on PostgreSQL that only enqueues `test.crash` (its workers are child processes). */
export async function enqueuingApp(driver: JobCrashDriver, redisPrefix: string): Promise<TestApp> {
  const t = await createTestApp('postgres', {
    jobsLeaseSeconds: 10,
    jobsPollIntervalSeconds: 1,
    jobsDriver: driver,
    ...(driver === 'redis' && {
      redisUrl: REDIS_URL,
      jobsRedisPrefix: `${redisPrefix}-${randomBytes(4).toString('hex')}`,
    }),
  });
  t.app.services.jobs.define({ type: 'test.crash', maxAttempts: 1, handler: async () => null });
  return t;
}

/** Starts a worker process on the same database (test/fixtures/job-worker.ts); `hang` makes its handlers never end. */
export async function worker(t: TestApp, marker: string, hang: boolean): Promise<ChildProcess> {
  const child = fork(path.join(here, 'fixtures/job-worker.ts'), {
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

/** The job ids the workers wrote to `marker`, one per run. */
export const markerLines = (marker: string) =>
  readFileSync(marker, 'utf8').trim().split('\n').filter(Boolean);
