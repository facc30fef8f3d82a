import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import {
  baseConfig,
  client,
  countMissing,
  inNewTenant,
  killed,
  serverProcess,
  sleep,
  type Tally,
  tally,
  userLoad,
} from './fault-lib.js';
import { startApp } from './lib.js';

/** SIGTERM while jobs run and requests are in flight (item 6). */
export async function sigterm(): Promise<Tally> {
  const t = tally('SIGTERM under job load and user writes (embedded)');
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'plexica-fault-term-'));
  await (await PGlite.create(path.join(dataDir, 'pgdata'))).close();
  const marker = path.join(dataDir, 'marker.log');
  writeFileSync(marker, '');
  const server = await serverProcess(baseConfig(dataDir, { shutdownTimeoutMs: 10_000 }), marker, 1000);
  const base = server.address;
  const { call, token, tenant } = await inNewTenant(base, 'term');
  const jobs = await call('POST', '/api/v1/jobs/bulk', {
    jobs: Array.from({ length: 40 }, () => ({ type: 'fault.work' })),
  });
  const acked = new Set<string>();
  t.runs++;
  const stop = userLoad(call, t, acked, 4, 'term');
  await sleep(1500);
  const signalled = Date.now();
  server.child.kill('SIGTERM');
  const code = await server.exited;
  const ended = Date.now();
  await stop();
  const lines = readFileSync(marker, 'utf8').split('\n').filter(Boolean);
  const startedAfter = lines.filter(
    (l) => l.startsWith('start') && Number(l.split(' ')[1]) > signalled,
  ).length;
  const running =
    lines.filter((l) => l.startsWith('start')).length - lines.filter((l) => l.startsWith('done')).length;
  // the data must all be there on the next start
  const again = await serverProcess(baseConfig(dataDir), marker, 1000);
  const after = client(
    () => again.address,
    () => token,
    tenant,
  );
  t.acked = acked.size;
  t.lost = await countMissing(after, acked);
  again.child.kill('SIGTERM');
  await again.exited;
  t.note = `exit ${code} after ${ended - signalled} ms; ${jobs.body.items.length} jobs queued, ${startedAfter} started after SIGTERM, ${running} left unfinished`;
  t.recoverMs.push(ended - signalled);
  await rm(dataDir, { recursive: true, force: true });
  return t;
}

/** BullMQ workers killed mid-flood with the tenant at its limit, on PostgreSQL and the shared Redis (item 2). */
export async function workerKill(jobs: number): Promise<Tally> {
  const t = tally(`BullMQ worker kill -9 mid-flood of ${jobs} jobs, tenant at its limit (lease 10 s)`);
  const overrides = {
    jobsDriver: 'redis' as const,
    redisUrl: process.env.PLEXICA_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
    jobsRedisPrefix: `plx-faults-${randomBytes(4).toString('hex')}`,
    jobsLeaseSeconds: 10,
    jobsPollIntervalSeconds: 1,
  };
  // this process only takes requests: every job runs in the worker processes, which write the marker
  const { app, close } = await startApp('postgres', { ...overrides, role: 'api' });
  const marker = path.join(app.config.dataDir, 'marker.log');
  writeFileSync(marker, '');
  app.services.jobs.define({ type: 'fault.work', handler: async () => null });
  const workers: ChildProcess[] = [];
  try {
    const base = (await app.start())!;
    const { call } = await inNewTenant(base, 'flood');
    const workerConfig = { ...app.config, role: 'worker' as const };
    // the scheduler's sweep re-sends deliveries a killed worker claimed and never sent
    workers.push((await serverProcess({ ...app.config, role: 'scheduler' }, marker, 100)).child);
    const first = await serverProcess(workerConfig, marker, 100);
    workers.push(first.child);
    const ids = new Set<string>();
    for (let i = 0; i < jobs; i += 500) {
      const res = await call('POST', '/api/v1/jobs/bulk', {
        jobs: Array.from({ length: Math.min(500, jobs - i) }, () => ({ type: 'fault.work' })),
      });
      for (const job of res.body.items as { id: string }[]) ids.add(job.id);
    }
    t.acked = ids.size;
    t.runs++;
    console.log(`  ${ids.size} jobs enqueued`);
    await sleep(1500);
    await killed(first.child);
    const killedAt = performance.now();
    const second = await serverProcess(workerConfig, marker, 100);
    workers.push(second.child);
    const doneIds = () =>
      readFileSync(marker, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('done'))
        .map((l) => l.split(' ')[2]!);
    const deadline = Date.now() + 90_000;
    while (new Set(doneIds()).size < ids.size && Date.now() < deadline) await sleep(250);
    t.recoverMs.push(performance.now() - killedAt);
    console.log(`  ${new Set(doneIds()).size} done`);
    const done = doneIds();
    const unique = new Set(done);
    const missing = [...ids].filter((id) => !unique.has(id));
    t.jobsLost = missing.length;
    t.duplicates = done.length - unique.size;
    for (const id of missing.slice(0, 3))
      console.log('  not done:', JSON.stringify((await call('GET', `/api/v1/jobs/${id}`)).body));
    t.note =
      'recover = kill to the last job done; jobs of 100 ms, 8 per tenant at once; a scheduler process sweeps';
  } finally {
    for (const worker of workers) await killed(worker);
    console.log('  closing');
    await close();
  }
  return t;
}
