import { type RequestContext, requireTenant } from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import { tenantScope } from '../../infra/database/tenant-scope.js';
import type { AuditTenantTables } from './tables.js';

/** How the actor proved who it is. */
export type AuditCredential = 'access_token' | 'oidc_token' | 'api_key' | 'signed_url' | 'password';

export interface AuditEvent {
  id: string;
  at: string;
  /**
   * `anonymous`: no principal, but a credential (a signed URL, a failed login's password);
   * `system`: work no request started.
   */
  actorType: 'user' | 'api_key' | 'system' | 'anonymous';
  actorId: string | null;
  credential: AuditCredential | null;
  ip: string | null;
  action: string;
  targetType: string;
  targetId: string | null;
  /** X-Trace-ID as received: the client's when it sent one, so never the only correlation. */
  traceId: string | null;
  /** The server's own id of the request; nobody outside chooses it. */
  requestId: string | null;
  data: Record<string, unknown>;
}

export interface AuditInput {
  action: string;
  targetType: string;
  targetId?: string;
  data?: Record<string, unknown>;
}

/** The tenant's audit log, kept in its own schema (`tenant_{slug}.audit_events`). */
export interface AuditService {
  /** Records an event; pass `trx` to make it part of the caller's transaction. */
  record(ctx: RequestContext, event: AuditInput, trx?: Executor): Promise<void>;
  /** Records several events of one request in one statement (a bulk enqueue). */
  recordAll(ctx: RequestContext, events: AuditInput[], trx?: Executor): Promise<void>;
  list(ctx: RequestContext, query: { limit: number; offset: number; action?: string }): Promise<AuditEvent[]>;
  /**
   * Calls `listener` with every change recorded, in the same transaction (`trx` is the
   * caller's, or the database handle when the record was not part of one): the events
   * module turns them into lifecycle events. A listener that throws fails the change.
   */
  onRecorded(listener: AuditListener): void;
}

export type AuditListener = (ctx: RequestContext, events: AuditInput[], trx: Executor) => Promise<void>;

/** What credential the context's principal presented, as far as the principal tells. */
export function credentialOf(ctx: RequestContext): AuditCredential | null {
  if (ctx.credential) return ctx.credential;
  const principal = ctx.principal;
  if (!principal) return null;
  if (principal.type === 'api_key') return 'api_key';
  // Plexica's own access tokens belong to a session; an IdP's token has none
  return principal.sessionId ? 'access_token' : 'oidc_token';
}

export function createAuditService(db: Executor): AuditService {
  const listeners: AuditListener[] = [];
  const recordAll: AuditService['recordAll'] = async (ctx, events, trx = db) => {
    if (events.length === 0) return;
    const tenant = requireTenant(ctx);
    const actor = {
      actor_type: ctx.principal?.type ?? (ctx.credential ? ('anonymous' as const) : ('system' as const)),
      actor_id: ctx.principal?.id ?? null,
      credential: credentialOf(ctx),
      ip: ctx.ip ?? null,
      trace_id: ctx.traceId,
      request_id: ctx.requestId ?? null,
    };
    await tenantScope<AuditTenantTables>(trx, tenant)
      .insertInto('audit_events')
      .values(
        events.map((event) => ({
          ...actor,
          action: event.action,
          target_type: event.targetType,
          target_id: event.targetId ?? null,
          data: JSON.stringify(event.data ?? {}),
        })),
      )
      .execute();
    for (const listener of listeners) await listener(ctx, events, trx);
  };

  return {
    record: (ctx, event, trx) => recordAll(ctx, [event], trx),
    recordAll,
    onRecorded(listener) {
      listeners.push(listener);
    },
    async list(ctx, { limit, offset, action }) {
      const tenant = requireTenant(ctx);
      let query = tenantScope<AuditTenantTables>(db, tenant).selectFrom('audit_events').selectAll();
      if (action) query = query.where('action', '=', action);
      const rows = await query.orderBy('id', 'desc').limit(limit).offset(offset).execute();
      return rows.map((r) => ({
        id: String(r.id),
        at: r.at.toISOString(),
        actorType: r.actor_type,
        actorId: r.actor_id,
        credential: r.credential as AuditCredential | null,
        ip: r.ip,
        action: r.action,
        targetType: r.target_type,
        targetId: r.target_id,
        traceId: r.trace_id,
        requestId: r.request_id,
        data: r.data,
      }));
    },
  };
}
