import type { Insertable } from 'kysely';
import { type RequestContext, requireTenant } from '../../context.js';
import { type Executor, preparedPerSchema } from '../../infra/database/index.js';
import { tenantScope } from '../../infra/database/tenant-scope.js';
import type { Transaction } from '../../infra/database/transaction.js';
import type { AuditEventsTable, AuditTenantTables } from './tables.js';

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

/**
 * Where a record is written: the database (on its own), or the caller's transaction. Give the
 * `Transaction` of `inTransaction` rather than its bare handle: what listeners do after the
 * commit (wake the bus's consumers, relay its outbox) then runs at the commit. With a bare
 * transaction handle there is no commit to run it at, so events raised by the record reach
 * their consumers only at the bus's next poll or outbox sweep (up to seconds later).
 */
export type AuditTarget = Executor | Transaction;

/** The tenant's audit log, kept in its own schema (`tenant_{slug}.audit_events`). */
export interface AuditService {
  /** Records an event; pass `trx` to make it part of the caller's transaction. */
  record(ctx: RequestContext, event: AuditInput, trx?: AuditTarget): Promise<void>;
  /** Records several events of one request in one statement (a bulk enqueue). */
  recordAll(ctx: RequestContext, events: AuditInput[], trx?: AuditTarget): Promise<void>;
  list(ctx: RequestContext, query: { limit: number; offset: number; action?: string }): Promise<AuditEvent[]>;
  /**
   * Calls `listener` with every change recorded, in the same transaction (`tx` is the
   * caller's, or the database handle when the record was not part of one, whose
   * after-commit steps run once the listeners are done): the events module turns them
   * into lifecycle events. A listener that throws fails the change.
   */
  onRecorded(listener: AuditListener): void;
}

export type AuditListener = (ctx: RequestContext, events: AuditInput[], tx: Transaction) => Promise<void>;

const isTransaction = (target: AuditTarget): target is Transaction => 'afterCommit' in target;

/** What credential the context's principal presented, as far as the principal tells. */
export function credentialOf(ctx: RequestContext): AuditCredential | null {
  if (ctx.credential) return ctx.credential;
  const principal = ctx.principal;
  if (!principal) return null;
  if (principal.type === 'api_key') return 'api_key';
  // Plexica's own access tokens belong to a session; an IdP's token has none
  return principal.sessionId ? 'access_token' : 'oidc_token';
}

type EventRow = Insertable<AuditEventsTable>;

export function createAuditService(db: Executor): AuditService {
  // one event per call is the common case (every write of every module records one): planned
  // once per tenant schema; several in one call stay one statement of their own size
  const insertOne = preparedPerSchema(
    'audit.insert_one',
    (schema) =>
      (
        actorType: EventRow['actor_type'],
        actorId: EventRow['actor_id'],
        credential: EventRow['credential'],
        ip: EventRow['ip'],
        traceId: EventRow['trace_id'],
        requestId: EventRow['request_id'],
        action: EventRow['action'],
        targetType: EventRow['target_type'],
        targetId: EventRow['target_id'],
        data: EventRow['data'],
      ) =>
        tenantScope<AuditTenantTables>(db, { schema }).insertInto('audit_events').values({
          actor_type: actorType,
          actor_id: actorId,
          credential,
          ip,
          trace_id: traceId,
          request_id: requestId,
          action,
          target_type: targetType,
          target_id: targetId,
          data,
        }),
  );

  const listeners: AuditListener[] = [];
  const recordAll: AuditService['recordAll'] = async (ctx, events, target = db) => {
    if (events.length === 0) return;
    // outside a transaction the write has happened when the listeners are done: their
    // after-commit steps run then; a bare transaction handle has no commit to run them at
    const steps: (() => Promise<void>)[] = [];
    const tx: Transaction = isTransaction(target)
      ? target
      : { db: target, afterCommit: (step) => void (target === db && steps.push(step)) };
    const trx = tx.db;
    const tenant = requireTenant(ctx);
    const actor = {
      actor_type: ctx.principal?.type ?? (ctx.credential ? ('anonymous' as const) : ('system' as const)),
      actor_id: ctx.principal?.id ?? null,
      credential: credentialOf(ctx),
      ip: ctx.ip ?? null,
      trace_id: ctx.traceId,
      request_id: ctx.requestId ?? null,
    };
    const [only] = events;
    if (events.length === 1 && only) {
      await insertOne(tenant.schema).execute(
        trx,
        actor.actor_type,
        actor.actor_id,
        actor.credential,
        actor.ip,
        actor.trace_id,
        actor.request_id,
        only.action,
        only.targetType,
        only.targetId ?? null,
        JSON.stringify(only.data ?? {}),
      );
    } else {
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
    }
    // the events module raises core lifecycle events from these records, in the same transaction
    for (const listener of listeners) await listener(ctx, events, tx);
    for (const step of steps) await step();
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
