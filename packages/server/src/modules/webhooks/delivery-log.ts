import { type Kysely, type Selectable, sql } from 'kysely';
import { type RequestContext, requireTenant } from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import { inTransaction } from '../../infra/database/transaction.js';
import { PlexicaError } from '../../infra/errors.js';
import { UUID } from '../../infra/uuid.js';
import type { JobQueueService } from '../jobs/index.js';
import { DELIVER_JOB } from './delivery.js';
import type { WebhookAttemptsTable, WebhooksTables } from './tables.js';

export interface WebhookAttempt {
  attempt: number;
  requestHeaders: Record<string, string>;
  responseStatus: number | null;
  responseBody: string | null;
  latencyMs: number;
  error: string | null;
  at: string;
}

export interface WebhookDelivery {
  id: string;
  endpointId: string;
  eventId: string;
  eventType: string;
  status: 'pending' | 'succeeded' | 'failed';
  attempts: WebhookAttempt[];
  nextAttemptAt: string | null;
  redeliveryOf: string | null;
  createdAt: string;
}

const toAttempt = (a: Selectable<WebhookAttemptsTable>): WebhookAttempt => ({
  attempt: a.attempt,
  requestHeaders: a.request_headers,
  responseStatus: a.response_status,
  responseBody: a.response_body,
  latencyMs: a.latency_ms,
  error: a.error,
  at: a.created_at.toISOString(),
});

/** The delivery log of an endpoint: reading it, sending one delivery again, recovering a range, retention. */
export function createDeliveryLog(executor: Executor, jobs: JobQueueService) {
  const db: Kysely<WebhooksTables> = executor;
  const endpointOf = async (ctx: RequestContext, endpointId: string) => {
    const tenant = requireTenant(ctx);
    const found = UUID.test(endpointId)
      ? await db
          .selectFrom('core.webhook_endpoints')
          .select(['id'])
          .where('tenant_id', '=', tenant.id)
          .where('id', '=', endpointId)
          .executeTakeFirst()
      : undefined;
    if (!found) throw new PlexicaError('PLX_WEBHOOK_NOT_FOUND');
    return found.id;
  };

  /** A fresh delivery (attempts from 1) of what an earlier one carried. */
  const redeliverRows = async (
    ctx: RequestContext,
    rows: {
      id: string;
      endpoint_id: string;
      tenant_id: string;
      event_id: string;
      event_type: string;
      payload: unknown;
    }[],
  ) =>
    inTransaction(db, async (tx) => {
      const ids: string[] = [];
      for (const r of rows) {
        const copy = await (tx.db as Kysely<WebhooksTables>)
          .insertInto('core.webhook_deliveries')
          .values({
            endpoint_id: r.endpoint_id,
            tenant_id: r.tenant_id,
            event_id: r.event_id,
            event_type: r.event_type,
            payload: JSON.stringify(r.payload),
            redelivery_of: r.id,
          })
          .returning('id')
          .executeTakeFirstOrThrow();
        await jobs.enqueueIn(tx, ctx, { type: DELIVER_JOB, data: { deliveryId: copy.id } });
        ids.push(copy.id);
      }
      return ids;
    });

  return {
    async list(ctx: RequestContext, endpointId: string, limit: number): Promise<WebhookDelivery[]> {
      const id = await endpointOf(ctx, endpointId);
      const rows = await db
        .selectFrom('core.webhook_deliveries')
        .selectAll()
        .where('endpoint_id', '=', id)
        .orderBy('created_at', 'desc')
        .orderBy('id')
        .limit(limit)
        .execute();
      const attempts = rows.length
        ? await db
            .selectFrom('core.webhook_attempts')
            .selectAll()
            .where(
              'delivery_id',
              'in',
              rows.map((r) => r.id),
            )
            .orderBy('attempt')
            .execute()
        : [];
      return rows.map((r) => ({
        id: r.id,
        endpointId: r.endpoint_id,
        eventId: r.event_id,
        eventType: r.event_type,
        status: r.status,
        attempts: attempts.filter((a) => a.delivery_id === r.id).map(toAttempt),
        nextAttemptAt: r.next_attempt_at?.toISOString() ?? null,
        redeliveryOf: r.redelivery_of,
        createdAt: r.created_at.toISOString(),
      }));
    },
    async redeliver(ctx: RequestContext, endpointId: string, deliveryId: string): Promise<string> {
      const id = await endpointOf(ctx, endpointId);
      const row = UUID.test(deliveryId)
        ? await db
            .selectFrom('core.webhook_deliveries')
            .selectAll()
            .where('endpoint_id', '=', id)
            .where('id', '=', deliveryId)
            .executeTakeFirst()
        : undefined;
      if (!row) throw new PlexicaError('PLX_WEBHOOK_DELIVERY_NOT_FOUND');
      const [copy] = await redeliverRows(ctx, [row]);
      return copy as string;
    },
    /** Redelivers every failed delivery of the endpoint created in [since, until]. @returns how many */
    async recover(
      ctx: RequestContext,
      endpointId: string,
      range: { since: string; until?: string },
    ): Promise<number> {
      const id = await endpointOf(ctx, endpointId);
      const since = new Date(range.since);
      const until = range.until ? new Date(range.until) : new Date();
      if (since.getTime() > Date.now() || since > until)
        throw new PlexicaError('PLX_WEBHOOK_RANGE_INVALID', {
          detail: 'since must be in the past and before until',
        });
      const rows = await db
        .selectFrom('core.webhook_deliveries')
        .selectAll()
        .where('endpoint_id', '=', id)
        .where('status', '=', 'failed')
        .where('created_at', '>=', since)
        .where('created_at', '<=', until)
        .limit(10_000)
        .execute();
      return (await redeliverRows(ctx, rows)).length;
    },
    async purge(days: number): Promise<number> {
      const result =
        await sql`delete from core.webhook_deliveries where created_at < now() - ${days} * interval '1 day' and status <> 'pending'`.execute(
          db,
        );
      return Number(result.numAffectedRows ?? 0n);
    },
  };
}

export type WebhookDeliveryLog = ReturnType<typeof createDeliveryLog>;
