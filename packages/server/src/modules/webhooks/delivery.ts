import { type Kysely, sql } from 'kysely';
import type { Logger } from 'pino';
import { type RequestContext, requireTenant } from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import { inTransaction } from '../../infra/database/transaction.js';
import { isPlexicaError } from '../../infra/errors.js';
import type { OutboundGuard } from '../../infra/net/outbound-guard.js';
import type { RateLimitStore } from '../../infra/rate-limit/store.js';
import type { AuditService } from '../audit/index.js';
import { patternsRegex } from '../events/envelope.js';
import type { CloudEvent, EventBus } from '../events/index.js';
import type { JobQueueService } from '../jobs/index.js';
import type { SecretsService } from '../secrets/index.js';
import { signatureHeader } from './signing.js';
import type { WebhooksTables } from './tables.js';

export const DELIVER_JOB = 'webhooks.deliver';
const BODY_KEPT = 4096;

export interface DeliveryOptions {
  db: Executor;
  bus: EventBus;
  jobs: JobQueueService;
  secrets: SecretsService;
  audit: AuditService;
  guard: OutboundGuard;
  logger: Pick<Logger, 'warn'>;
  /** Seconds before retry n (index n-1); attempts = length + 1. */
  retrySchedule: number[];
  timeoutMs: number;
  autoDisableAfter: number;
  /** Attempts per second to one endpoint, counted on the shared rate-limit store. */
  endpointRateLimit: number;
  rateLimits: RateLimitStore;
}

/** Seconds a 429/503 asks us to wait (`Retry-After`: seconds or an HTTP date), capped at a day. */
export function retryAfterSeconds(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = /^\d+$/.test(header.trim())
    ? Number(header.trim())
    : (Date.parse(header) - Date.now()) / 1000;
  return Number.isFinite(seconds) ? Math.min(86_400, Math.max(0, Math.ceil(seconds))) : undefined;
}

export function createWebhookDelivery(options: DeliveryOptions) {
  const db: Kysely<WebhooksTables> = options.db;
  const { jobs, secrets, guard, bus, audit } = options;
  const maxAttempts = options.retrySchedule.length + 1;

  /** The bus → one delivery per matching endpoint, each its own job (a slow endpoint delays no other). */
  const dispatch = async (ctx: RequestContext, event: CloudEvent) => {
    const tenant = requireTenant(ctx);
    const endpoints = await db
      .selectFrom('core.webhook_endpoints')
      .select(['id', 'event_types', 'app_id'])
      .where('tenant_id', '=', tenant.id)
      .where('status', '=', 'active')
      .execute();
    const matching = endpoints.filter(
      (e) =>
        new RegExp(patternsRegex(e.event_types)).test(event.type) &&
        (e.app_id === null || event.source === `/apps/${e.app_id}`),
    );
    if (matching.length === 0) return;
    await inTransaction(db, async (tx) => {
      const created = await (tx.db as Kysely<WebhooksTables>)
        .insertInto('core.webhook_deliveries')
        .values(
          matching.map((e) => ({
            endpoint_id: e.id,
            tenant_id: tenant.id,
            event_id: event.id,
            event_type: event.type,
            payload: JSON.stringify(event),
          })),
        )
        // the bus delivers at least once: a second copy of the event adds nothing
        .onConflict((oc) =>
          oc.columns(['endpoint_id', 'event_id']).where('redelivery_of', 'is', null).doNothing(),
        )
        .returning('id')
        .execute();
      for (const d of created)
        await jobs.enqueueIn(tx, ctx, { type: DELIVER_JOB, data: { deliveryId: d.id } });
    });
  };

  const fail = async (endpointId: string, tenantCtx: RequestContext) => {
    const updated = await db
      .updateTable('core.webhook_endpoints')
      .set({ consecutive_failures: sql`consecutive_failures + 1`, updated_at: new Date() })
      .where('id', '=', endpointId)
      .returning(['consecutive_failures', 'status'])
      .executeTakeFirst();
    if (updated?.status !== 'active' || updated.consecutive_failures < options.autoDisableAfter) return;
    await inTransaction(db, async (tx) => {
      await (tx.db as Kysely<WebhooksTables>)
        .updateTable('core.webhook_endpoints')
        .set({ status: 'disabled', disabled_reason: `${updated.consecutive_failures} consecutive failures` })
        .where('id', '=', endpointId)
        .execute();
      await audit.record(
        tenantCtx,
        {
          action: 'webhook_endpoint.disabled',
          targetType: 'webhook_endpoint',
          targetId: endpointId,
          data: { consecutiveFailures: updated.consecutive_failures },
        },
        tx,
      );
      await bus.publishIn(
        tx,
        tenantCtx,
        'webhooks.endpoint.disabled',
        { id: endpointId, consecutiveFailures: updated.consecutive_failures },
        { key: endpointId },
      );
    });
  };

  /** One attempt of one delivery: the job handler. */
  const attempt = async (ctx: RequestContext, deliveryId: string) => {
    const d = await db
      .selectFrom('core.webhook_deliveries as d')
      .innerJoin('core.webhook_endpoints as e', 'e.id', 'd.endpoint_id')
      .select([
        'd.id',
        'd.status',
        'd.attempts',
        'd.payload',
        'd.event_id',
        'e.id as endpoint_id',
        'e.url',
        'e.status as endpoint_status',
        'e.secret_id',
        'e.previous_secret_id',
        'e.previous_secret_until',
      ])
      .where('d.id', '=', deliveryId)
      .executeTakeFirst();
    if (d?.status !== 'pending') return;
    const settle = (
      status: 'succeeded' | 'failed' | 'pending',
      extra: { attempts?: number; last_status?: number | null; next_attempt_at?: Date | null } = {},
    ) =>
      db
        .updateTable('core.webhook_deliveries')
        .set({ status, updated_at: new Date(), ...extra })
        .where('id', '=', d.id)
        .execute();
    if (d.endpoint_status !== 'active') return void (await settle('failed', { next_attempt_at: null }));
    // per-endpoint rate limit: over it, the attempt moves to the next window and is not counted
    const window = await options.rateLimits.hit(
      `tenant:${requireTenant(ctx).slug}:webhook:${d.endpoint_id}`,
      1000,
    );
    if (window.count > options.endpointRateLimit) {
      const runAt = new Date(Date.now() + window.resetInMs);
      await inTransaction(db, (tx) =>
        jobs.enqueueIn(tx, ctx, {
          type: DELIVER_JOB,
          data: { deliveryId: d.id },
          runAt: runAt.toISOString(),
        }),
      );
      return;
    }
    const number = d.attempts + 1;
    const body = JSON.stringify(d.payload);
    const timestamp = Math.floor(Date.now() / 1000);
    const signing = [await secrets.read(d.secret_id)];
    if (d.previous_secret_id && d.previous_secret_until && d.previous_secret_until > new Date())
      signing.push(await secrets.read(d.previous_secret_id));
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'Plexica-Webhooks/1.0',
      // the same id on every attempt and redelivery: receivers deduplicate on it
      'webhook-id': d.event_id,
      'webhook-timestamp': String(timestamp),
    };
    const started = performance.now();
    let status: number | null = null;
    let responseBody: string | null = null;
    let retryAfter: number | undefined;
    let error: string | null = null;
    try {
      const response = await guard.safeFetch(d.url, {
        method: 'POST',
        headers: { ...headers, 'webhook-signature': signatureHeader(signing, d.event_id, timestamp, body) },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(options.timeoutMs),
      });
      status = response.status;
      responseBody = (await response.text().catch(() => '')).slice(0, BODY_KEPT);
      retryAfter = retryAfterSeconds(response.headers.get('retry-after'));
    } catch (err) {
      error = isPlexicaError(err)
        ? `${err.code}: ${err.message}`
        : err instanceof Error
          ? err.message
          : String(err);
    }
    const latencyMs = Math.round(performance.now() - started);
    await db
      .insertInto('core.webhook_attempts')
      .values({
        delivery_id: d.id,
        attempt: number,
        request_headers: JSON.stringify(headers),
        response_status: status,
        response_body: responseBody,
        latency_ms: latencyMs,
        error,
      })
      .execute();
    if (status !== null && status >= 200 && status < 300) {
      await settle('succeeded', { attempts: number, last_status: status, next_attempt_at: null });
      await db
        .updateTable('core.webhook_endpoints')
        .set({ consecutive_failures: 0 })
        .where('id', '=', d.endpoint_id)
        .execute();
      return;
    }
    if (status === 410) {
      // Standard Webhooks: 410 Gone means the receiver wants no more
      await settle('failed', { attempts: number, last_status: status, next_attempt_at: null });
      await db
        .updateTable('core.webhook_endpoints')
        .set({
          status: 'disabled',
          disabled_reason: 'the endpoint answered 410 Gone',
          updated_at: new Date(),
        })
        .where('id', '=', d.endpoint_id)
        .execute();
      return;
    }
    await fail(d.endpoint_id, ctx);
    if (number >= maxAttempts)
      return void (await settle('failed', { attempts: number, last_status: status, next_attempt_at: null }));
    const delay = retryAfter ?? options.retrySchedule[number - 1] ?? 0;
    const runAt = new Date(Date.now() + delay * 1000);
    await inTransaction(db, async (tx) => {
      await (tx.db as Kysely<WebhooksTables>)
        .updateTable('core.webhook_deliveries')
        .set({ attempts: number, last_status: status, next_attempt_at: runAt, updated_at: new Date() })
        .where('id', '=', d.id)
        .execute();
      await jobs.enqueueIn(tx, ctx, {
        type: DELIVER_JOB,
        data: { deliveryId: d.id },
        runAt: runAt.toISOString(),
      });
    });
  };

  return {
    dispatch,
    attempt,
    maxAttempts,
  };
}

export type WebhookDeliveryService = ReturnType<typeof createWebhookDelivery>;
