import type { Logger } from 'pino';
import { type RequestContext, systemContext } from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import { inTransaction, type Transaction } from '../../infra/database/transaction.js';
import type { AuditInput } from '../audit/index.js';
import type { JobQueueService } from '../jobs/index.js';
import type { PlatformEventsService } from './platform-events.js';
import type { EventBus } from './service.js';

/** Where a lifecycle event is published. */
export type CatalogueTopics = 'tenant' | 'tenant+global' | 'global';

/**
 * The core's lifecycle events (docs/events.md is this table in prose): each is
 * raised by the audit record of the change, in the change's own transaction,
 * so it is in the event log and on the bus exactly when the change committed.
 * `tenant` events go on `{slug}.{type}` and into the tenant's event log;
 * `global` ones on `global.{type}` only (platform consumers: operators,
 * plugins that serve every tenant), without a `tenantid`: the tenant is in `data`.
 */
export const CORE_EVENT_CATALOGUE: Record<
  string,
  { type: string; entity: string; topics?: CatalogueTopics }
> = {
  'tenant.created': { type: 'core.tenant.created', entity: 'tenant', topics: 'tenant+global' },
  'tenant.updated': { type: 'core.tenant.updated', entity: 'tenant', topics: 'tenant+global' },
  'tenant.suspended': { type: 'core.tenant.suspended', entity: 'tenant', topics: 'tenant+global' },
  'tenant.resumed': { type: 'core.tenant.resumed', entity: 'tenant', topics: 'tenant+global' },
  // the tenant works no more (its users get 410, its webhooks stop): nobody in it is listening
  'tenant.deleted': { type: 'core.tenant.deleted', entity: 'tenant', topics: 'global' },
  'user.created': { type: 'core.user.created', entity: 'user' },
  'user.updated': { type: 'core.user.updated', entity: 'user' },
  'user.deleted': { type: 'core.user.deleted', entity: 'user' },
  'role.created': { type: 'core.role.created', entity: 'role' },
  'role.updated': { type: 'core.role.updated', entity: 'role' },
  'role.deleted': { type: 'core.role.deleted', entity: 'role' },
  'api_key.created': { type: 'core.api_key.created', entity: 'api_key' },
  'api_key.revoked': { type: 'core.api_key.revoked', entity: 'api_key' },
  'identity_provider.configured': { type: 'core.identity_provider.configured', entity: 'identity_provider' },
  'identity_provider.removed': { type: 'core.identity_provider.removed', entity: 'identity_provider' },
  'storage.file.uploaded': { type: 'storage.file.uploaded', entity: 'file' },
  'storage.file.deleted': { type: 'storage.file.deleted', entity: 'file' },
  'storage.file.moved': { type: 'storage.file.moved', entity: 'file' },
  'storage.file.copied': { type: 'storage.file.copied', entity: 'file' },
  'job.created': { type: 'jobs.job.created', entity: 'job' },
  'job_schedule.created': { type: 'jobs.schedule.created', entity: 'job_schedule' },
  'webhook_endpoint.created': { type: 'webhooks.endpoint.created', entity: 'webhook_endpoint' },
  'webhook_endpoint.deleted': { type: 'webhooks.endpoint.deleted', entity: 'webhook_endpoint' },
};

/** Job types whose creation raises no event: each webhook delivery is a job, and would raise one per delivery. */
const SILENT_JOB_TYPES = /^webhooks\./;

/**
 * The audit listener that raises them, on the transaction the record was
 * written in: given `inTransaction`'s `Transaction`, the bus's after-commit
 * step (waking consumers, relaying the outbox) runs at its commit, so
 * subscribers get the event at once instead of at the next poll or sweep.
 */
export function lifecycleEventsFromAudit(events: PlatformEventsService, bus: EventBus) {
  return async (ctx: RequestContext, records: AuditInput[], tx: Transaction) => {
    const tenant = ctx.tenant;
    if (!tenant) return;
    for (const record of records) {
      const entry = CORE_EVENT_CATALOGUE[record.action];
      if (!entry) continue;
      if (record.action === 'job.created' && SILENT_JOB_TYPES.test(String(record.data?.type ?? ''))) continue;
      const entityId = record.targetId ?? null;
      const actor = ctx.principal ? { type: ctx.principal.type, id: ctx.principal.id } : null;
      const topics = entry.topics ?? 'tenant';
      if (topics !== 'global')
        await events.recordCore(tx, ctx, {
          type: entry.type,
          entityType: entry.entity,
          entityId,
          data: { id: entityId, ...record.data, actor },
        });
      if (topics !== 'tenant')
        await bus.publishIn(
          tx,
          { ...ctx, tenant: null },
          entry.type,
          { id: entityId, ...record.data, tenant: { id: tenant.id, slug: tenant.slug }, actor },
          entityId ? { key: entityId, subject: `${entry.entity}/${entityId}` } : {},
        );
    }
  };
}

/**
 * `jobs.job.completed` / `jobs.job.failed` (after the last attempt), in the log and on the bus,
 * from the worker that ran the job. Webhook deliveries are jobs too and raise none: each would
 * raise an event that an endpoint for `jobs.*` delivers, for ever.
 */
export function wireJobLifecycle(
  jobs: JobQueueService,
  events: PlatformEventsService,
  db: Executor,
  logger: Pick<Logger, 'warn'>,
) {
  jobs.onFinished((job) => {
    if (SILENT_JOB_TYPES.test(job.type)) return;
    const ctx = systemContext(job.traceId ?? job.id, job.tenant);
    void inTransaction(db, (tx) =>
      events.recordCore(tx, ctx, {
        type: job.status === 'completed' ? 'jobs.job.completed' : 'jobs.job.failed',
        entityType: 'job',
        entityId: job.id,
        data: { id: job.id, type: job.type, attempts: job.attempts, error: job.lastError },
      }),
    ).catch((err: unknown) =>
      logger.warn({ err, jobId: job.id }, 'could not record the job lifecycle event'),
    );
  });
}
