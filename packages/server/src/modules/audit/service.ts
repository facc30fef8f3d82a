import type { Kysely } from 'kysely';
import { type RequestContext, requireTenant } from '../../context.js';
import type { CoreDatabase, TenantDatabase } from '../../infra/database/index.js';

export interface AuditEvent {
  id: string;
  at: string;
  actorType: 'user' | 'api_key' | 'system';
  actorId: string | null;
  action: string;
  targetType: string;
  targetId: string | null;
  traceId: string | null;
  data: Record<string, unknown>;
}

/** The tenant's audit log, kept in its own schema (`tenant_{slug}.audit_events`). */
export interface AuditService {
  /** Records an event; pass `trx` to make it part of the caller's transaction. */
  record(
    ctx: RequestContext,
    event: { action: string; targetType: string; targetId?: string; data?: Record<string, unknown> },
    trx?: Kysely<CoreDatabase>,
  ): Promise<void>;
  list(ctx: RequestContext, query: { limit: number; offset: number; action?: string }): Promise<AuditEvent[]>;
}

export function createAuditService(db: Kysely<CoreDatabase>): AuditService {
  const tenantDb = (executor: Kysely<CoreDatabase>, schema: string) =>
    (executor as unknown as Kysely<TenantDatabase>).withSchema(schema);
  return {
    async record(ctx, event, trx = db) {
      const tenant = requireTenant(ctx);
      await tenantDb(trx, tenant.schema)
        .insertInto('audit_events')
        .values({
          actor_type: ctx.principal?.type ?? 'system',
          actor_id: ctx.principal?.id ?? null,
          action: event.action,
          target_type: event.targetType,
          target_id: event.targetId ?? null,
          trace_id: ctx.traceId,
          data: JSON.stringify(event.data ?? {}),
        })
        .execute();
    },
    async list(ctx, { limit, offset, action }) {
      const tenant = requireTenant(ctx);
      let query = tenantDb(db, tenant.schema).selectFrom('audit_events').selectAll();
      if (action) query = query.where('action', '=', action);
      const rows = await query.orderBy('id', 'desc').limit(limit).offset(offset).execute();
      return rows.map((r) => ({
        id: String(r.id),
        at: r.at.toISOString(),
        actorType: r.actor_type,
        actorId: r.actor_id,
        action: r.action,
        targetType: r.target_type,
        targetId: r.target_id,
        traceId: r.trace_id,
        data: r.data,
      }));
    },
  };
}
