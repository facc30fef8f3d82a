import { randomUUID } from 'node:crypto';
import { type Kysely, type Selectable, sql } from 'kysely';
import type { Logger } from 'pino';
import { systemContext, type TenantRef, type TenantSettings, toTenantRef } from '../../context.js';
import { createBatcher } from '../../infra/batcher.js';
import type { Definition } from './definitions.js';
import type { Delivery, QueueDriver, Received } from './drivers/queue-driver.js';
import type { JobStatusName, JobsTable, JobsTables } from './tables.js';

/** Engine redeliveries allowed for abandoned leases (crashed workers), on top of the attempts. */
export const CRASH_ALLOWANCE = 5;
/** A suspended tenant's job waits this long before it is looked at again. */
const SUSPENDED_DELAY_MS = 60_000;
/** The most rows one claim or finish statement touches. */
const BATCH = 500;

export const queueOf = (type: string) => `plexica.${type}`;
/** Rows grouped by the queue of their type. */
export const byQueue = <R extends { type: string }>(rows: R[]) => {
  const groups = new Map<string, R[]>();
  for (const row of rows) {
    const queue = queueOf(row.type);
    groups.set(queue, [...(groups.get(queue) ?? []), row]);
  }
  return groups;
};
const message = (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, 2000);

/** The delivery that hands `row` to the engine (again). */
export const deliveryOf = (
  row: Pick<Selectable<JobsTable>, 'id' | 'tenant_id' | 'priority' | 'run_at' | 'max_attempts' | 'attempts'>,
  definition: Definition | undefined,
  id: string = randomUUID(),
): Delivery => ({
  id,
  jobId: row.id,
  tenantId: row.tenant_id,
  priority: row.priority,
  runAt: row.run_at,
  retryLimit: row.max_attempts - row.attempts - 1 + CRASH_ALLOWANCE,
  retryDelaySeconds: definition?.retryDelaySeconds,
});

/** What a run needs of the job and its tenant: no timestamps (parsing them is most of a row's cost). */
type Claimed = Pick<
  Selectable<JobsTable>,
  'id' | 'tenant_id' | 'data' | 'priority' | 'attempts' | 'max_attempts' | 'trace_id'
> & { tenant_status: string; slug: string; settings: TenantSettings };

/** How an attempt ended, as written to the job's row. */
interface Outcome {
  id: string;
  status: JobStatusName;
  dead: boolean;
  attempts: number;
  last_error: string | null;
  result: unknown;
  finished: boolean;
}

export interface JobRunner {
  /** One delivery: claims the job, runs its handler, writes how it ended. Rejects to have the engine retry. */
  run(type: string, received: Received): Promise<void>;
  /** Aborts a job running in this process (cancel). @returns whether it was running here */
  abort(jobId: string, reason: string): boolean;
}

/**
 * Runs deliveries. Claims and outcomes of jobs that start or end together are
 * written in one statement each (see `createBatcher`), so a busy worker costs
 * a few statements per batch instead of two per job.
 */
/** A job that ended for good, as the events module turns it into `jobs.job.completed` / `jobs.job.failed`. */
export interface JobFinished {
  id: string;
  type: string;
  status: 'completed' | 'failed';
  lastError: string | null;
  attempts: number;
  tenant: TenantRef;
  traceId: string | null;
}

export function createJobRunner(options: {
  db: Kysely<JobsTables>;
  driver: QueueDriver;
  definitions: Map<string, Definition>;
  logger: Logger;
  /** Called when a job ends for good (completed, failed, cancelled): its tenant has room for another. */
  onSettled?: (tenantId: string, type: string) => void;
  /** Called after a job's attempt ended it for good (completed, or failed after its last attempt). */
  onFinished?: (job: JobFinished) => void;
}): JobRunner {
  const { db, driver, definitions, logger, onSettled, onFinished } = options;
  const running = new Map<string, AbortController>();

  // pending or running → running, for the delivery the row names (or any, before it names one);
  // `id = any(…)` beside the join lets the planner use the primary key whatever it guesses of the recordset
  // a job of a suspended or deleted tenant is returned as it is and handled by `run`
  const claim = createBatcher(
    async (items: Pick<Received, 'jobId' | 'deliveryId'>[]) => {
      const { rows } = await sql<Claimed>`
        update core.jobs as j
        set status = case when t.status = 'active' then 'running' else j.status end,
            started_at = case when t.status = 'active' then coalesce(j.started_at, now()) else j.started_at end,
            updated_at = now()
        from core.tenants as t,
             jsonb_to_recordset(${JSON.stringify(items)}::jsonb) as d("jobId" uuid, "deliveryId" text)
        where j.id = any(${items.map((i) => i.jobId)}::uuid[]) and j.id = d."jobId"
          and t.id = j.tenant_id and j.status in ('pending', 'running')
          and (j.delivery_id is null or j.delivery_id = d."deliveryId")
        returning j.id, j.tenant_id, j.data, j.priority, j.attempts, j.max_attempts, j.trace_id,
                  t.status as tenant_status, t.slug, t.settings`.execute(db);
      const byId = new Map(rows.map((row) => [row.id, row]));
      // two deliveries of one job in one batch: only the first gets it
      return items.map((item) => {
        const row = byId.get(item.jobId);
        byId.delete(item.jobId);
        return row;
      });
    },
    { maxBatch: BATCH, parallel: 4 },
  );

  // only a running job ends: a job cancelled meanwhile stays cancelled
  const finish = createBatcher(
    async (outcomes: Outcome[]) => {
      await sql`
        update core.jobs as j
        set status = o.status,
            dead = o.dead,
            attempts = o.attempts,
            last_error = coalesce(o.last_error, j.last_error),
            result = case when o.status = 'completed' then o.result else j.result end,
            progress = case when o.status = 'completed' then 100 else j.progress end,
            finished_at = case when o.finished then now() else j.finished_at end,
            updated_at = now()
        from jsonb_to_recordset(${JSON.stringify(outcomes)}::jsonb) as o(
          id uuid, status text, dead boolean, attempts integer, last_error text, result jsonb, finished boolean)
        where j.id = any(${outcomes.map((o) => o.id)}::uuid[]) and j.id = o.id and j.status = 'running'`.execute(
        db,
      );
      return outcomes.map(() => undefined);
    },
    { maxBatch: BATCH, parallel: 4 },
  );

  /** A suspended tenant's job waits: a new delivery later, resuming the tenant lets it run. */
  const postpone = async (type: string, job: Claimed) => {
    const runAt = new Date(Date.now() + SUSPENDED_DELAY_MS);
    const delivery = deliveryOf({ ...job, run_at: runAt }, definitions.get(type));
    await driver.send(queueOf(type), [delivery]);
    await db
      .updateTable('core.jobs')
      .set({
        run_at: runAt,
        delivery_id: delivery.id,
        last_error: 'waiting: the tenant is suspended',
        updated_at: sql<Date>`now()`,
      })
      .where('id', '=', job.id)
      .where('status', '=', 'pending')
      .execute();
  };

  const run = async (type: string, { jobId, deliveryId, signal: engineSignal }: Received) => {
    const definition = definitions.get(type)!;
    const job = await claim({ jobId, deliveryId });
    // cancelled, finished, purged or handed to another delivery: nothing to do, and this delivery is settled
    if (!job) return;
    if (job.tenant_status === 'deleted') {
      await db
        .updateTable('core.jobs')
        .set({
          status: 'cancelled',
          last_error: 'the tenant was deleted',
          finished_at: sql<Date>`now()`,
          updated_at: sql<Date>`now()`,
        })
        .where('id', '=', jobId)
        .where('status', 'in', ['pending', 'running'])
        .execute();
      onSettled?.(job.tenant_id, type);
      return;
    }
    if (job.tenant_status === 'suspended') return postpone(type, job);

    const tenant = toTenantRef({ id: job.tenant_id, slug: job.slug, settings: job.settings });
    const controller = new AbortController();
    running.set(jobId, controller);
    const abortOnEngine = () => controller.abort(new Error('the worker gave up this delivery'));
    engineSignal.addEventListener('abort', abortOnEngine, { once: true });
    const timer = setTimeout(
      () => controller.abort(new Error(`timed out after ${definition.timeoutMs} ms`)),
      definition.timeoutMs,
    );
    const attempt = job.attempts + 1;
    const ended = async (o: Omit<Outcome, 'id' | 'last_error' | 'result'> & Partial<Outcome>) => {
      await finish({ id: jobId, last_error: null, result: null, ...o });
      if (o.finished) onSettled?.(job.tenant_id, type);
      if (o.finished && (o.status === 'completed' || o.status === 'failed'))
        onFinished?.({
          id: jobId,
          type,
          status: o.status,
          lastError: o.last_error ?? null,
          attempts: o.attempts,
          tenant,
          traceId: job.trace_id,
        });
    };
    try {
      const result = await Promise.race([
        definition.handler({
          id: jobId,
          type,
          data: job.data,
          attempt,
          tenant,
          ctx: systemContext(job.trace_id ?? jobId, tenant),
          signal: controller.signal,
          async updateProgress(percent) {
            await db
              .updateTable('core.jobs')
              .set({
                progress: Math.max(0, Math.min(100, Math.round(percent))),
                updated_at: sql<Date>`now()`,
              })
              .where('id', '=', jobId)
              .where('status', '=', 'running')
              .execute();
          },
        }),
        new Promise<never>((_, reject) => {
          controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
        }),
      ]);
      // a result that is not JSON fails this job's attempt here, not the batch it is written in
      const stored: unknown = JSON.parse(JSON.stringify(result ?? null));
      await ended({ status: 'completed', dead: false, attempts: attempt, result: stored, finished: true });
    } catch (err) {
      if (engineSignal.aborted) {
        // shutdown or lost lease: not an attempt; the engine delivers it again
        await ended({
          status: 'pending',
          dead: false,
          attempts: job.attempts,
          last_error: 'the worker stopped; it runs again',
          finished: false,
        });
        throw err;
      }
      if (controller.signal.reason === 'cancelled') return;
      const final = attempt >= job.max_attempts;
      logger.warn({ err, jobId, type, attempt, final }, 'job attempt failed');
      await ended({
        status: final ? 'failed' : 'pending',
        dead: final,
        attempts: attempt,
        last_error: message(err),
        finished: final,
      });
      // not final: the engine retries with exponential backoff and jitter
      if (!final) throw err;
    } finally {
      clearTimeout(timer);
      engineSignal.removeEventListener('abort', abortOnEngine);
      running.delete(jobId);
    }
  };

  return {
    run,
    abort(jobId, reason) {
      const controller = running.get(jobId);
      controller?.abort(reason);
      return controller !== undefined;
    },
  };
}
