import { randomUUID } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_ENGINES } from '../../../test/engines.js';
import { createTestApp, type TestApp } from '../../../test/harness.js';
import { waitFor } from '../../../test/wait.js';
import type { JobRun } from './service.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const { database: kind, name, overrides: engineOverrides, transactional } of JOB_ENGINES) {
  const overrides = engineOverrides();
  describe(`jobs: ${name}`, () => {
    let t: TestApp;
    let a: { id: string; slug: string; adminToken: string };
    let b: { id: string; slug: string; adminToken: string };
    const runs: JobRun[] = [];
    const flaky = new Map<string, number>();
    const gates = new Map<string, () => void>();
    const patient: number[] = [];

    const enqueue = (token: string, body: unknown, headers: Record<string, string> = {}) =>
      t.request({ method: 'POST', url: '/api/v1/jobs', token, body, headers });
    const status = async (token: string, id: string) =>
      (await t.request({ method: 'GET', url: `/api/v1/jobs/${id}/status`, token })).body;
    /** A test.echo job of tenant A written straight to core.jobs, as a crash may leave it. */
    const storeEcho = (text: string, deliveryId: string | null = null) =>
      t.app.database.db
        .insertInto('core.jobs')
        .values({
          tenant_id: a.id,
          type: 'test.echo',
          data: JSON.stringify({ text }),
          max_attempts: 3,
          delivery_id: deliveryId,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
    const settled = (token: string, id: string, timeoutMs?: number) =>
      waitFor(async () => {
        const job = await status(token, id);
        return ['completed', 'failed', 'cancelled'].includes(job.status) ? job : undefined;
      }, timeoutMs);

    beforeAll(async () => {
      t = await createTestApp(kind, { jobsPollIntervalSeconds: 1, jobsRetryDelaySeconds: 1, ...overrides });
      const jobs = t.app.services.jobs;
      jobs.define<{ text: string }>({
        type: 'test.echo',
        schema: Type.Object({ text: Type.String({ maxLength: 20 }) }, { additionalProperties: false }),
        async handler(run) {
          runs.push(run as JobRun);
          return { echoed: run.data.text, tenant: run.tenant.slug };
        },
      });
      jobs.define<{ key: string; failures: number }>({
        type: 'test.flaky',
        maxAttempts: 3,
        async handler(run) {
          const seen = (flaky.get(run.data.key) ?? 0) + 1;
          flaky.set(run.data.key, seen);
          if (seen <= run.data.failures) throw new Error(`failure ${seen} of ${run.data.key}`);
          return { succeededOnCall: seen };
        },
      });
      jobs.define({
        type: 'test.patient',
        maxAttempts: 2,
        retryDelaySeconds: 3,
        async handler(run) {
          patient.push(Date.now());
          if (run.attempt === 1) throw new Error('not yet');
          return 'second time';
        },
      });
      jobs.define<{ key: string }>({
        type: 'test.gated',
        timeoutMs: 60_000,
        async handler(run) {
          await run.updateProgress(40);
          await new Promise<void>((resolve, reject) => {
            gates.set(run.data.key, resolve);
            run.signal.addEventListener('abort', () => reject(run.signal.reason), { once: true });
          });
          return 'opened';
        },
      });
      jobs.define({
        type: 'test.hang',
        timeoutMs: 300,
        maxAttempts: 1,
        handler: () => new Promise(() => {}),
      });
      jobs.define<{ ms: number }>({
        type: 'test.sleep',
        concurrency: 4,
        tenantConcurrency: 2,
        async handler(run) {
          await sleep(run.data.ms);
          return null;
        },
      });
      await jobs.start();
      a = await t.createTenant('jobs-a');
      b = await t.createTenant('jobs-b');
    });
    afterAll(async () => {
      await t?.close();
    });

    it('runs a job in its tenant with the trace id of the request, and records the result', async () => {
      const res = await enqueue(
        a.adminToken,
        { type: 'test.echo', data: { text: 'hi' } },
        { 'x-trace-id': 'trace-echo-1' },
      );
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body).toMatchObject({ type: 'test.echo', status: 'pending', attempts: 0, maxAttempts: 3 });
      const done = await settled(a.adminToken, res.body.id);
      expect(done).toMatchObject({
        status: 'completed',
        progress: 100,
        attempts: 1,
        result: { echoed: 'hi', tenant: 'jobs-a' },
        traceId: 'trace-echo-1',
        lastError: null,
      });
      expect(new Date(done.finishedAt).getTime()).toBeGreaterThanOrEqual(new Date(done.startedAt).getTime());
      const run = runs.find((r) => r.id === res.body.id)!;
      expect(run.ctx.tenant?.id).toBe(a.id);
      expect(run.ctx.traceId).toBe('trace-echo-1');
    });

    it('shows progress while running and lets a running job be cancelled', async () => {
      const res = await enqueue(a.adminToken, { type: 'test.gated', data: { key: 'progress' } });
      const job = await waitFor(async () => {
        const s = await status(a.adminToken, res.body.id);
        return s.status === 'running' && s.progress === 40 ? s : undefined;
      });
      expect(job.startedAt).not.toBeNull();
      gates.get('progress')!();
      expect(await settled(a.adminToken, res.body.id)).toMatchObject({
        status: 'completed',
        result: 'opened',
      });

      const second = await enqueue(a.adminToken, { type: 'test.gated', data: { key: 'cancel-me' } });
      await waitFor(async () => (await status(a.adminToken, second.body.id)).status === 'running');
      const cancelled = await t.request({
        method: 'DELETE',
        url: `/api/v1/jobs/${second.body.id}`,
        token: a.adminToken,
      });
      expect(cancelled.body).toMatchObject({ status: 'cancelled', lastError: 'cancelled while running' });
      await sleep(300);
      expect((await status(a.adminToken, second.body.id)).status).toBe('cancelled');
    });

    it('retries a failing job with backoff and completes it', async () => {
      const res = await enqueue(a.adminToken, { type: 'test.flaky', data: { key: 'twice', failures: 2 } });
      const done = await settled(a.adminToken, res.body.id, 30_000);
      expect(done).toMatchObject({
        status: 'completed',
        attempts: 3,
        dead: false,
        result: { succeededOnCall: 3 },
      });
      expect(flaky.get('twice')).toBe(3);
    });

    it('waits the retry delay of the job’s own type before trying again', async () => {
      const res = await enqueue(a.adminToken, { type: 'test.patient' });
      expect(await settled(a.adminToken, res.body.id, 30_000)).toMatchObject({
        status: 'completed',
        attempts: 2,
      });
      // 3 s, with jitter: pg-boss spreads it over 3–6 s, BullMQ over 1.5–3 s
      expect(patient[1]! - patient[0]!).toBeGreaterThanOrEqual(1_400);
    });

    it('moves a job that exhausts its attempts to the dead-letter state, and re-drives it', async () => {
      const res = await enqueue(a.adminToken, {
        type: 'test.flaky',
        data: { key: 'four', failures: 4 },
        maxAttempts: 2,
      });
      const dead = await settled(a.adminToken, res.body.id, 30_000);
      expect(dead).toMatchObject({
        status: 'failed',
        dead: true,
        attempts: 2,
        lastError: 'failure 2 of four',
      });
      const letters = await t.request({ method: 'GET', url: '/api/v1/jobs?dead=true', token: a.adminToken });
      expect(letters.body.items.map((j: { id: string }) => j.id)).toContain(res.body.id);

      const again = await t.request({
        method: 'POST',
        url: `/api/v1/jobs/${res.body.id}/retry`,
        token: a.adminToken,
      });
      expect(again.body).toMatchObject({ status: 'pending', attempts: 0, dead: false, lastError: null });
      // calls 3 and 4 fail, the re-drive has 2 attempts: dead again; then one more re-drive succeeds
      expect(await settled(a.adminToken, res.body.id, 30_000)).toMatchObject({
        status: 'failed',
        dead: true,
      });
      await t.request({ method: 'POST', url: `/api/v1/jobs/${res.body.id}/retry`, token: a.adminToken });
      expect(await settled(a.adminToken, res.body.id, 30_000)).toMatchObject({
        status: 'completed',
        attempts: 1,
        result: { succeededOnCall: 5 },
      });
    });

    it('fails an attempt that runs past its timeout', async () => {
      const res = await enqueue(a.adminToken, { type: 'test.hang' });
      expect(await settled(a.adminToken, res.body.id)).toMatchObject({
        status: 'failed',
        dead: true,
        lastError: 'timed out after 300 ms',
      });
    });

    it('holds a delayed job until its time, and cancels it before it runs', async () => {
      const runAt = new Date(Date.now() + 2_000).toISOString();
      const res = await enqueue(a.adminToken, { type: 'test.echo', data: { text: 'later' }, runAt });
      await sleep(800);
      expect((await status(a.adminToken, res.body.id)).status).toBe('pending');
      expect((await settled(a.adminToken, res.body.id)).status).toBe('completed');
      expect(Date.now()).toBeGreaterThanOrEqual(new Date(runAt).getTime());

      const never = await enqueue(a.adminToken, {
        type: 'test.echo',
        data: { text: 'never' },
        runAt: new Date(Date.now() + 1_500).toISOString(),
      });
      const cancel = await t.request({
        method: 'DELETE',
        url: `/api/v1/jobs/${never.body.id}`,
        token: a.adminToken,
      });
      expect(cancel.body.status).toBe('cancelled');
      await sleep(2_500);
      expect(runs.some((r) => r.id === never.body.id)).toBe(false);
      const again = await t.request({
        method: 'DELETE',
        url: `/api/v1/jobs/${never.body.id}`,
        token: a.adminToken,
      });
      expect(again.status).toBe(409);
      expect(again.body.code).toBe('PLX_JOB_NOT_CANCELLABLE');
    });

    it('returns the same job for the same idempotency key', async () => {
      const body = { type: 'test.echo', data: { text: 'once' }, idempotencyKey: 'report-2026-11' };
      const first = await enqueue(a.adminToken, body);
      const second = await enqueue(a.adminToken, body);
      expect(second.body.id).toBe(first.body.id);
      await settled(a.adminToken, first.body.id);
      expect(runs.filter((r) => r.id === first.body.id)).toHaveLength(1);
      // another tenant's key space is its own
      const other = await enqueue(b.adminToken, body);
      expect(other.body.id).not.toBe(first.body.id);
    });

    it('enqueues in bulk, all or nothing', async () => {
      const ok = await t.request({
        method: 'POST',
        url: '/api/v1/jobs/bulk',
        token: a.adminToken,
        body: { jobs: [1, 2, 3].map((n) => ({ type: 'test.echo', data: { text: `bulk-${n}` } })) },
      });
      expect(ok.status).toBe(201);
      for (const job of ok.body.items) expect((await settled(a.adminToken, job.id)).status).toBe('completed');
      const before = (await t.request({ method: 'GET', url: '/api/v1/jobs?limit=100', token: a.adminToken }))
        .body.total;
      const bad = await t.request({
        method: 'POST',
        url: '/api/v1/jobs/bulk',
        token: a.adminToken,
        body: { jobs: [{ type: 'test.echo', data: { text: 'fine' } }, { type: 'test.nope' }] },
      });
      expect(bad.status).toBe(400);
      expect(bad.body).toMatchObject({ code: 'PLX_JOB_TYPE_UNKNOWN', errors: [{ field: '1.type' }] });
      expect(
        (await t.request({ method: 'GET', url: '/api/v1/jobs?limit=100', token: a.adminToken })).body.total,
      ).toBe(before);
    });

    it('refuses bad input with precise errors', async () => {
      const unknown = await enqueue(a.adminToken, { type: 'nope.nothing' });
      expect(unknown.status).toBe(400);
      expect(unknown.body.code).toBe('PLX_JOB_TYPE_UNKNOWN');
      const payload = await enqueue(a.adminToken, { type: 'test.echo', data: { text: 42 } });
      expect(payload.status).toBe(400);
      expect(payload.body).toMatchObject({ code: 'PLX_VALIDATION', errors: [{ field: 'data.text' }] });
      const extra = await enqueue(a.adminToken, { type: 'test.echo', data: { text: 'x' }, when: 'now' });
      expect(extra.body.errors[0]).toEqual({ field: 'body.when', message: 'unknown field' });
      const date = await enqueue(a.adminToken, { type: 'test.echo', data: { text: 'x' }, runAt: 'tomorrow' });
      expect(date.body.code).toBe('PLX_VALIDATION');
      const done = await enqueue(a.adminToken, { type: 'test.echo', data: { text: 'x' } });
      await settled(a.adminToken, done.body.id);
      const retry = await t.request({
        method: 'POST',
        url: `/api/v1/jobs/${done.body.id}/retry`,
        token: a.adminToken,
      });
      expect(retry.status).toBe(409);
      expect(retry.body.code).toBe('PLX_JOB_NOT_RETRYABLE');
      const missing = await t.request({
        method: 'GET',
        url: '/api/v1/jobs/00000000-0000-4000-8000-000000000000',
        token: a.adminToken,
      });
      expect(missing.body.code).toBe('PLX_JOB_NOT_FOUND');
      // nothing of the refused requests was stored
      const stored = await t.request({
        method: 'GET',
        url: '/api/v1/jobs?type=nope.nothing',
        token: a.adminToken,
      });
      expect(stored.body.total).toBe(0);
    });

    it('keeps tenants apart: B cannot see, cancel or retry A’s jobs', async () => {
      const res = await enqueue(a.adminToken, { type: 'test.echo', data: { text: 'mine' } });
      for (const [method, url] of [
        ['GET', `/api/v1/jobs/${res.body.id}`],
        ['DELETE', `/api/v1/jobs/${res.body.id}`],
        ['POST', `/api/v1/jobs/${res.body.id}/retry`],
      ] as const) {
        const attempt = await t.request({ method, url, token: b.adminToken });
        expect(attempt.status, `${method} ${url}`).toBe(404);
        expect(attempt.body.code).toBe('PLX_JOB_NOT_FOUND');
      }
      const list = await t.request({ method: 'GET', url: '/api/v1/jobs?limit=100', token: b.adminToken });
      expect(JSON.stringify(list.body)).not.toContain(res.body.id);
      expect((await settled(a.adminToken, res.body.id)).status).toBe('completed');
    });

    it('does not run jobs of a suspended tenant, and cancels those of a deleted one', async () => {
      const admin = await t.adminToken();
      const c = await t.createTenant(`jobs-c-${kind}-${transactional ? 'tx' : 'win'}`.slice(0, 30));
      const waiting = await enqueue(c.adminToken, {
        type: 'test.echo',
        data: { text: 'held' },
        runAt: new Date(Date.now() + 1_000).toISOString(),
      });
      await t.request({
        method: 'PATCH',
        url: `/api/v1/tenants/${c.id}`,
        token: admin,
        body: { status: 'suspended' },
      });
      const held = await waitFor(async () => {
        const s = await t.request({
          method: 'GET',
          url: `/api/v1/jobs/${waiting.body.id}`,
          token: admin,
          tenant: c.id,
        });
        return s.body.lastError === 'waiting: the tenant is suspended' ? s.body : undefined;
      });
      expect(held.status).toBe('pending');
      expect(runs.some((r) => r.id === waiting.body.id)).toBe(false);

      await t.request({
        method: 'PATCH',
        url: `/api/v1/tenants/${c.id}`,
        token: admin,
        body: { status: 'active' },
      });
      // the suspension ended the admin's session: a resumed tenant logs in again
      const resumed = await t.login(`admin@${c.slug}.test`, 'tenant-admin-pw-1', c.slug);
      const doomed = await enqueue(resumed, {
        type: 'test.echo',
        data: { text: 'doomed' },
        runAt: new Date(Date.now() + 1_000).toISOString(),
      });
      await t.request({ method: 'DELETE', url: `/api/v1/tenants/${c.id}`, token: admin });
      const row = await waitFor(async () => {
        const r = await t.app.database.db
          .selectFrom('core.jobs')
          .select(['status', 'last_error'])
          .where('id', '=', doomed.body.id)
          .executeTakeFirst();
        return r?.status === 'cancelled' ? r : undefined;
      });
      expect(row.last_error).toBe('the tenant was deleted');
    });

    it('delivers a stored job whose hand-off to the engine a crash interrupted', async () => {
      // what a crash between the commit and the dispatch leaves (engines that cannot join a transaction)
      const row = await storeEcho('swept');
      expect(await t.app.services.jobs.sweep(0)).toBeGreaterThanOrEqual(1);
      expect(await settled(a.adminToken, row.id)).toMatchObject({
        status: 'completed',
        result: { echoed: 'swept' },
      });
    });

    it('keeps one tenant’s flood from starving another tenant', async () => {
      const flood = await t.request({
        method: 'POST',
        url: '/api/v1/jobs/bulk',
        token: a.adminToken,
        body: { jobs: Array.from({ length: 60 }, () => ({ type: 'test.sleep', data: { ms: 100 } })) },
      });
      expect(flood.status).toBe(201);
      await sleep(300);
      if (!transactional) {
        // BullMQ's queue is FIFO: A's flood waits in core.jobs, the engine holds 2 × tenantConcurrency of it
        const held = await t.app.database.db
          .selectFrom('core.jobs')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('tenant_id', '=', a.id)
          .where('type', '=', 'test.sleep')
          .where('status', 'in', ['pending', 'running'])
          .where('delivery_id', 'is not', null)
          .executeTakeFirstOrThrow();
        expect(Number(held.n)).toBeLessThanOrEqual(4);
      }
      const small = await enqueue(b.adminToken, { type: 'test.sleep', data: { ms: 1 } });
      const done = await settled(b.adminToken, small.body.id, 20_000);
      expect(done.status).toBe('completed');
      // A is limited to 2 of the 4 slots: most of its flood is still waiting when B is done
      const pendingOfA = async () =>
        (
          await t.request({
            method: 'GET',
            url: '/api/v1/jobs?type=test.sleep&status=pending&limit=1',
            token: a.adminToken,
          })
        ).body.total as number;
      expect(await pendingOfA()).toBeGreaterThan(30);
      // and the flood drains: each job that ends makes room for the next
      await waitFor(async () => (await pendingOfA()) === 0, 30_000);
    });

    // only engines outside our transaction claim a delivery before sending it
    if (!transactional)
      it('sends again a delivery claimed but not sent before a crash', async () => {
        // claimed (delivery id written) by a process that died before handing it to BullMQ
        const row = await storeEcho('claimed', randomUUID());
        await sleep(50);
        expect(await t.app.services.jobs.sweep(0)).toBeGreaterThanOrEqual(1);
        expect(await settled(a.adminToken, row.id)).toMatchObject({
          status: 'completed',
          result: { echoed: 'claimed' },
        });
      });

    it('runs a cron schedule once per tick however many schedulers tick', async () => {
      const created = await t.request({
        method: 'POST',
        url: '/api/v1/jobs/schedule',
        token: a.adminToken,
        body: { type: 'test.echo', cron: '* * * * * *', data: { text: 'tick' } },
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const schedule = created.body;
      const at = new Date(new Date(schedule.nextRunAt).getTime() + 10);
      const counts = await Promise.all(Array.from({ length: 5 }, () => t.app.services.schedules.tick(at)));
      expect(counts.reduce((x, y) => x + y, 0)).toBe(1);
      expect(await t.app.services.schedules.tick(at)).toBe(0); // that tick is done
      const [after] = (await t.request({ method: 'GET', url: '/api/v1/job-schedules', token: a.adminToken }))
        .body;
      expect(new Date(after.nextRunAt).getTime()).toBeGreaterThan(at.getTime());
      expect((await settled(a.adminToken, after.lastJobId)).result).toEqual({
        echoed: 'tick',
        tenant: 'jobs-a',
      });

      const paused = await t.request({
        method: 'PATCH',
        url: `/api/v1/job-schedules/${schedule.id}`,
        token: a.adminToken,
        body: { paused: true },
      });
      expect(paused.body.paused).toBe(true);
      expect(await t.app.services.schedules.tick(new Date(Date.now() + 60_000))).toBe(0);
      const removed = await t.request({
        method: 'DELETE',
        url: `/api/v1/job-schedules/${schedule.id}`,
        token: a.adminToken,
      });
      expect(removed.status).toBe(204);
      const gone = await t.request({
        method: 'DELETE',
        url: `/api/v1/job-schedules/${schedule.id}`,
        token: a.adminToken,
      });
      expect(gone.body.code).toBe('PLX_JOB_SCHEDULE_NOT_FOUND');
      const other = await t.request({
        method: 'PATCH',
        url: `/api/v1/job-schedules/${schedule.id}`,
        token: b.adminToken,
        body: { paused: false },
      });
      expect(other.body.code).toBe('PLX_JOB_SCHEDULE_NOT_FOUND');
    });

    it('accepts 5 and 6 fields, nicknames and time zones, and refuses bad cron precisely', async () => {
      const make = (body: Record<string, unknown>) =>
        t.request({
          method: 'POST',
          url: '/api/v1/jobs/schedule',
          token: a.adminToken,
          body: { type: 'test.echo', data: { text: 'c' }, ...body },
        });
      const daily = await make({ cron: '@daily', timezone: 'Asia/Tokyo' });
      expect(daily.status).toBe(201);
      // midnight in Tokyo is 15:00 UTC
      expect(daily.body.nextRunAt).toMatch(/T15:00:00\.000Z$/);
      expect((await make({ cron: '0 9 * * 1-5' })).status).toBe(201);
      expect((await make({ cron: '*/10 * * * * *' })).status).toBe(201);
      for (const [body, field] of [
        [{ cron: '* * * *' }, 'cron'],
        [{ cron: '61 * * * *' }, 'cron'],
        [{ cron: 'every day' }, 'cron'],
        [{ cron: '* * * * *', timezone: 'Mars/Olympus' }, 'timezone'],
      ] as const) {
        const res = await make(body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(res.body.code).toBe('PLX_JOB_CRON_INVALID');
        expect(res.body.errors[0].field).toBe(field);
      }
      expect((await make({ cron: '* * * * *', type: 'nope.nothing' })).body.code).toBe(
        'PLX_JOB_TYPE_UNKNOWN',
      );
      expect((await make({ cron: '* * * * *', data: { text: 7 } })).body.code).toBe('PLX_VALIDATION');
      const listed = (await t.request({ method: 'GET', url: '/api/v1/jobs/schedules', token: a.adminToken }))
        .body;
      expect(listed.map((s: { cron: string }) => s.cron)).toEqual([
        '@daily',
        '0 9 * * 1-5',
        '*/10 * * * * *',
      ]);
      for (const s of listed)
        await t.request({ method: 'DELETE', url: `/api/v1/jobs/schedules/${s.id}`, token: a.adminToken });
    });
  });
}
