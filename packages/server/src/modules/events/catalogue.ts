import type { RequestContext } from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import type { Transaction } from '../../infra/database/transaction.js';
import type { AuditInput } from '../audit/index.js';
import type { PlatformEventsService } from './platform-events.js';

/**
 * The core's lifecycle events (docs/events.md is this table in prose): each is
 * raised by the audit record of the change, in the change's own transaction,
 * so it is in the event log and on the bus exactly when the change committed.
 */
export const CORE_EVENT_CATALOGUE: Record<string, { type: string; entity: string }> = {
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
 * The audit listener that raises them. Inside a transaction the after-commit
 * wake-up is not available (the audit log gets the bare handle), so consumers
 * see these on their next poll or NOTIFY, and the outbox of an engine outside
 * the database relays them with its crash sweep.
 */
export function lifecycleEventsFromAudit(events: PlatformEventsService, db: Executor) {
  return async (ctx: RequestContext, records: AuditInput[], trx: Executor) => {
    const raised = records.flatMap((r) => {
      const entry = CORE_EVENT_CATALOGUE[r.action];
      if (r.action === 'job.created' && SILENT_JOB_TYPES.test(String(r.data?.type ?? ''))) return [];
      return entry && ctx.tenant ? [{ record: r, entry }] : [];
    });
    if (raised.length === 0) return;
    const pending: (() => Promise<void>)[] = [];
    const tx: Transaction = { db: trx, afterCommit: (step) => void pending.push(step) };
    for (const { record, entry } of raised)
      await events.recordCore(tx, ctx, {
        type: entry.type,
        entityType: entry.entity,
        entityId: record.targetId ?? null,
        data: {
          id: record.targetId ?? null,
          ...record.data,
          actor: ctx.principal ? { type: ctx.principal.type, id: ctx.principal.id } : null,
        },
      });
    // outside a transaction the write has happened: run the after-commit steps now
    if (trx === db) for (const step of pending) await step();
  };
}
