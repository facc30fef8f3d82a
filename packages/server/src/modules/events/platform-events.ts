import { type Kysely, type Selectable, sql } from 'kysely';
import { type RequestContext, requireTenant, type TenantRef } from '../../context.js';
import { isUniqueViolation } from '../../infra/database/errors.js';
import type { Executor } from '../../infra/database/index.js';
import { inTransaction, type Transaction } from '../../infra/database/transaction.js';
import { PlexicaError } from '../../infra/errors.js';
import type { TenantLimit } from '../../infra/rate-limit/tenant-limit.js';
import { type AppsService, appSource } from './apps.js';
import { assertEventType, CORE_SOURCE } from './envelope.js';
import type { EventBus } from './service.js';
import type { EventsTables, PlatformEventsTable } from './tables.js';

/** An entry of the platform event log (seed 002), as the events API shows it. */
export interface PlatformEvent {
  id: string;
  appId: string | null;
  source: string;
  category: string;
  type: string;
  entityType: string | null;
  entityId: string | null;
  data: unknown;
  traceId: string | null;
  occurredAt: string;
  createdAt: string;
}

export interface PublishInput {
  /** The first segment of the type (`crm`). */
  category: string;
  /** The rest of it (`deal.created`): the event's type is `{category}.{type}`. */
  type: string;
  entityType?: string;
  entityId?: string;
  data?: unknown;
  occurredAt?: string;
  /** The same key from the same app returns the first event instead of publishing again. */
  idempotencyKey?: string;
}

export interface EventLogFilter {
  appId?: string;
  category?: string;
  type?: string;
  entityType?: string;
  entityId?: string;
  from?: string;
  to?: string;
  cursor?: string;
  limit: number;
}

export interface PlatformEventsService {
  publish(
    ctx: RequestContext,
    appId: string,
    input: PublishInput,
  ): Promise<{ event: PlatformEvent; created: boolean }>;
  /** A core lifecycle event in the caller's transaction: in the log and on the bus only if it commits. */
  recordCore(
    tx: Transaction,
    ctx: RequestContext,
    input: { type: string; entityType: string; entityId: string | null; data: unknown },
  ): Promise<void>;
  /** Newest first; `nextCursor` continues after the last one. */
  list(
    ctx: RequestContext,
    filter: EventLogFilter,
  ): Promise<{ data: PlatformEvent[]; nextCursor: string | null }>;
  /** Removes entries older than `days`; a scheduler loop. */
  purge(days: number): Promise<number>;
}

const SEGMENT = /^[a-z0-9][a-z0-9_-]*$/;

const toEvent = (row: Selectable<PlatformEventsTable>): PlatformEvent => ({
  id: row.id,
  appId: row.app_id,
  source: row.source,
  category: row.category,
  type: row.type,
  entityType: row.entity_type,
  entityId: row.entity_id,
  data: row.data,
  traceId: row.trace_id,
  occurredAt: row.occurred_at.toISOString(),
  createdAt: row.created_at.toISOString(),
});

const encodeCursor = (seq: string) => Buffer.from(`s:${seq}`).toString('base64url');
function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString();
  const match = /^s:(\d{1,18})$/.exec(text);
  if (!match?.[1]) throw new PlexicaError('PLX_EVENT_CURSOR_INVALID');
  return match[1];
}

const neverMatches = (detail: string) => new PlexicaError('PLX_EVENT_FILTER_NEVER_MATCHES', { detail });

export function createPlatformEventsService(deps: {
  db: Executor;
  bus: EventBus;
  apps: AppsService;
  /** seed 002: events a tenant may publish per window. */
  publishLimit: TenantLimit<TenantRef>;
  /** Refuses an API key of another app. */
  mayPublishAs(ctx: RequestContext, appId: string): Promise<void>;
}): PlatformEventsService {
  const db: Kysely<EventsTables> = deps.db;
  const { bus, apps } = deps;

  const insert = (
    tx: Transaction,
    ctx: RequestContext,
    row: {
      id: string;
      app_id: string | null;
      source: string;
      category: string;
      type: string;
      entity_type: string | null;
      entity_id: string | null;
      idempotency_key: string | null;
      occurred_at: string;
      data: unknown;
    },
  ) =>
    (tx.db as Kysely<EventsTables>)
      .insertInto('core.platform_events')
      .values({
        ...row,
        data: JSON.stringify(row.data ?? null),
        tenant_id: requireTenant(ctx).id,
        trace_id: ctx.traceId,
      })
      .returningAll()
      .executeTakeFirstOrThrow();

  const existing = (appId: string, key: string) =>
    db
      .selectFrom('core.platform_events')
      .selectAll()
      .where('app_id', '=', appId)
      .where('idempotency_key', '=', key)
      .executeTakeFirst();

  return {
    async publish(ctx, appId, input) {
      await deps.publishLimit(requireTenant(ctx));
      const app = await apps.get(ctx, appId);
      await deps.mayPublishAs(ctx, app.id);
      if (!SEGMENT.test(input.category))
        throw new PlexicaError('PLX_EVENT_TYPE_INVALID', {
          detail: 'category must be one lower-case segment',
          errors: [{ field: 'category', message: 'must be one segment' }],
        });
      const type = `${input.category}.${input.type}`;
      assertEventType(type);
      if (input.idempotencyKey) {
        const first = await existing(app.id, input.idempotencyKey);
        if (first) return { event: toEvent(first), created: false };
      }
      try {
        const row = await inTransaction(db, async (tx) => {
          const event = await bus.publishIn(tx, ctx, type, input.data ?? null, {
            source: appSource(app.id),
            ...(input.entityId !== undefined && { key: input.entityId }),
            ...(input.entityType !== undefined && {
              subject: `${input.entityType}/${input.entityId ?? ''}`,
            }),
            ...(input.occurredAt !== undefined && { time: new Date(input.occurredAt) }),
          });
          return insert(tx, ctx, {
            id: event.id,
            app_id: app.id,
            source: event.source,
            category: input.category,
            type,
            entity_type: input.entityType ?? null,
            entity_id: input.entityId ?? null,
            data: event.data,
            idempotency_key: input.idempotencyKey ?? null,
            occurred_at: event.time,
          });
        });
        return { event: toEvent(row), created: true };
      } catch (err) {
        // the same key published at the same moment: the first one won
        if (input.idempotencyKey && isUniqueViolation(err)) {
          const first = await existing(app.id, input.idempotencyKey);
          if (first) return { event: toEvent(first), created: false };
        }
        throw err;
      }
    },
    async recordCore(tx, ctx, input) {
      const event = await bus.publishIn(tx, ctx, input.type, input.data, {
        ...(input.entityId && { key: input.entityId, subject: `${input.entityType}/${input.entityId}` }),
      });
      await insert(tx, ctx, {
        id: event.id,
        app_id: null,
        source: CORE_SOURCE,
        category: input.type.split('.')[0] ?? input.type,
        type: input.type,
        entity_type: input.entityType,
        entity_id: input.entityId,
        data: input.data,
        idempotency_key: null,
        occurred_at: event.time,
      });
    },
    async list(ctx, filter) {
      const tenant = requireTenant(ctx);
      if (filter.type !== undefined) assertEventType(filter.type);
      if (filter.category !== undefined && !SEGMENT.test(filter.category))
        throw neverMatches('category is one lower-case segment');
      if (filter.category && filter.type && !filter.type.startsWith(`${filter.category}.`))
        throw neverMatches(`type ${filter.type} is not in category ${filter.category}`);
      if (filter.from && filter.to && Date.parse(filter.from) > Date.parse(filter.to))
        throw neverMatches('from is after to');
      let query = db.selectFrom('core.platform_events').selectAll().where('tenant_id', '=', tenant.id);
      if (filter.appId !== undefined)
        query = query.where('app_id', '=', (await apps.get(ctx, filter.appId)).id);
      if (filter.category) query = query.where('category', '=', filter.category);
      if (filter.type) query = query.where('type', '=', filter.type);
      if (filter.entityType) query = query.where('entity_type', '=', filter.entityType);
      if (filter.entityId) query = query.where('entity_id', '=', filter.entityId);
      if (filter.from) query = query.where('occurred_at', '>=', new Date(filter.from));
      if (filter.to) query = query.where('occurred_at', '<=', new Date(filter.to));
      if (filter.cursor) query = query.where('seq', '<', decodeCursor(filter.cursor));
      const rows = await query
        .orderBy('seq', 'desc')
        .limit(filter.limit + 1)
        .execute();
      const page = rows.slice(0, filter.limit);
      const last = page.at(-1);
      return {
        data: page.map(toEvent),
        nextCursor: rows.length > filter.limit && last ? encodeCursor(String(last.seq)) : null,
      };
    },
    async purge(days) {
      const result = await sql`delete from core.platform_events
        where created_at < now() - ${days} * interval '1 day'`.execute(db);
      return Number(result.numAffectedRows ?? 0n);
    },
  };
}
