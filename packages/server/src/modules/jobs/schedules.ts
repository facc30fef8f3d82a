import { Cron } from 'croner';
import { type Kysely, type Selectable, sql } from 'kysely';
import type { Logger } from 'pino';
import { type RequestContext, requireTenant, systemContext, toTenantRef } from '../../context.js';
import { inTransaction } from '../../infra/database/transaction.js';
import { PlexicaError } from '../../infra/errors.js';
import { UUID } from '../../infra/uuid.js';
import type { AuditService } from '../audit/index.js';
import type { JobQueueService } from './service.js';
import type { JobSchedulesTable, JobsTables } from './tables.js';

export interface JobSchedule {
  id: string;
  type: string;
  cron: string;
  timezone: string | null;
  data: unknown;
  paused: boolean;
  nextRunAt: string;
  lastRunAt: string | null;
  lastJobId: string | null;
  createdAt: string;
}

export interface JobSchedulesService {
  /** Seed 000 §7 `schedule`: a job of `type` at every tick of `cron` (5 or 6 fields, @daily…, a time zone). */
  create(
    ctx: RequestContext,
    input: { type: string; cron: string; timezone?: string; data?: unknown },
  ): Promise<JobSchedule>;
  list(ctx: RequestContext): Promise<JobSchedule[]>;
  setPaused(ctx: RequestContext, id: string, paused: boolean): Promise<JobSchedule>;
  remove(ctx: RequestContext, id: string): Promise<void>;
  /**
   * Enqueues the job of every schedule due at `now`, once per tick however many
   * schedulers call this at the same time. @returns jobs enqueued
   */
  tick(now?: Date): Promise<number>;
}

/** The next run after `after`, or a precise error for an expression croner refuses. */
function nextRun(cron: string, timezone: string | null, after: Date): Date {
  let next: Date | null;
  try {
    next = new Cron(cron, { paused: true, ...(timezone && { timezone }) }).nextRun(after);
  } catch (err) {
    const message = (err as Error).message;
    const field = /timezone/i.test(message) ? 'timezone' : 'cron';
    throw new PlexicaError('PLX_JOB_CRON_INVALID', {
      detail: message,
      errors: [{ field, message: message.replace(/^Cron\w*: /, '') }],
    });
  }
  if (!next) {
    throw new PlexicaError('PLX_JOB_CRON_INVALID', {
      detail: `"${cron}" never runs again`,
      errors: [{ field: 'cron', message: 'has no future run' }],
    });
  }
  return next;
}

const toSchedule = (row: Selectable<JobSchedulesTable>): JobSchedule => ({
  id: row.id,
  type: row.type,
  cron: row.cron,
  timezone: row.timezone,
  data: row.data,
  paused: row.paused,
  nextRunAt: row.next_run_at.toISOString(),
  lastRunAt: row.last_run_at?.toISOString() ?? null,
  lastJobId: row.last_job_id,
  createdAt: row.created_at.toISOString(),
});

export function createJobSchedulesService(options: {
  db: Kysely<JobsTables>;
  jobs: JobQueueService;
  logger: Logger;
  /** Where schedule creation is recorded (`job_schedule.created`). */
  audit?: AuditService;
}): JobSchedulesService {
  const { db, jobs, logger, audit } = options;

  const load = async (ctx: RequestContext, id: string) => {
    const tenant = requireTenant(ctx);
    const row = UUID.test(id)
      ? await db
          .selectFrom('core.job_schedules')
          .selectAll()
          .where('id', '=', id)
          .where('tenant_id', '=', tenant.id)
          .executeTakeFirst()
      : undefined;
    if (!row) throw new PlexicaError('PLX_JOB_SCHEDULE_NOT_FOUND', { detail: `no schedule ${id}` });
    return row;
  };

  return {
    async create(ctx, { type, cron, timezone, data = {} }) {
      const tenant = requireTenant(ctx);
      await jobs.check({ type, data });
      const next = nextRun(cron, timezone ?? null, new Date());
      const row = await inTransaction(db, async (tx) => {
        const created = await tx.db
          .insertInto('core.job_schedules')
          .values({
            tenant_id: tenant.id,
            type,
            cron,
            timezone: timezone ?? null,
            data: JSON.stringify(data),
            next_run_at: next,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        await audit?.record(
          ctx,
          {
            action: 'job_schedule.created',
            targetType: 'job_schedule',
            targetId: created.id,
            data: { type, cron, timezone: timezone ?? null },
          },
          tx,
        );
        return created;
      });
      return toSchedule(row);
    },

    async list(ctx) {
      const tenant = requireTenant(ctx);
      const rows = await db
        .selectFrom('core.job_schedules')
        .selectAll()
        .where('tenant_id', '=', tenant.id)
        .orderBy('created_at')
        .execute();
      return rows.map(toSchedule);
    },

    async setPaused(ctx, id, paused) {
      const row = await load(ctx, id);
      const updated = await db
        .updateTable('core.job_schedules')
        .set({
          paused,
          // resuming starts from the next tick, not from the ticks missed while paused
          ...(!paused && { next_run_at: nextRun(row.cron, row.timezone, new Date()) }),
          updated_at: sql<Date>`now()`,
        })
        .where('id', '=', row.id)
        .returningAll()
        .executeTakeFirstOrThrow();
      return toSchedule(updated);
    },

    async remove(ctx, id) {
      const row = await load(ctx, id);
      await db.deleteFrom('core.job_schedules').where('id', '=', row.id).execute();
    },

    async tick(now = new Date()) {
      const due = await db
        .selectFrom('core.job_schedules')
        .select('type')
        .distinct()
        .where('paused', '=', false)
        .where('next_run_at', '<=', now)
        .execute();
      if (due.length === 0) return 0;
      await jobs.prepare(due.map((d) => d.type));
      const enqueued = await inTransaction(db, async (tx) => {
        const trx: Kysely<JobsTables> = tx.db;
        // SKIP LOCKED: a schedule another scheduler is enqueuing right now is its, not ours
        const rows = await trx
          .selectFrom('core.job_schedules')
          .selectAll()
          .where('paused', '=', false)
          .where('next_run_at', '<=', now)
          .orderBy('next_run_at')
          .limit(500)
          .forUpdate()
          .skipLocked()
          .execute();
        const ids: string[] = [];
        for (const row of rows) {
          // through the transaction: on the embedded database it holds the only connection
          const tenant = await trx
            .selectFrom('core.tenants')
            .select(['id', 'slug', 'settings', 'status'])
            .where('id', '=', row.tenant_id)
            .executeTakeFirst();
          if (!tenant || tenant.status === 'deleted') continue;
          const ctx = systemContext(`schedule:${row.id}`, toTenantRef(tenant));
          // the key makes a tick's job unique even if two schedulers read the same row
          const job = await jobs.enqueueIn(tx, ctx, {
            type: row.type,
            data: row.data,
            idempotencyKey: `schedule:${row.id}:${row.next_run_at.toISOString()}`,
          });
          let next: Date;
          try {
            next = nextRun(row.cron, row.timezone, now);
          } catch (err) {
            logger.error({ err, scheduleId: row.id }, 'schedule has no next run; pausing it');
            await trx
              .updateTable('core.job_schedules')
              .set({ paused: true })
              .where('id', '=', row.id)
              .execute();
            continue;
          }
          await trx
            .updateTable('core.job_schedules')
            .set({ next_run_at: next, last_run_at: now, last_job_id: job.id, updated_at: sql<Date>`now()` })
            .where('id', '=', row.id)
            .execute();
          ids.push(job.id);
        }
        return ids;
      });
      return enqueued.length;
    },
  };
}
