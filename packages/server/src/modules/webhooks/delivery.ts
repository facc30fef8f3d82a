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
import { createDeliveryStore, type DeliveryToAttempt } from './delivery-store.js';
import { createEndpointSlots } from './endpoint-slots.js';
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
  /** Attempts in flight to one endpoint in this process (of the worker's deliver slots). */
  endpointConcurrency: number;
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
  const { jobs, guard, bus, audit } = options;
  const store = createDeliveryStore(db, options.secrets);
  const slots = createEndpointSlots({ limit: options.endpointConcurrency, timeoutMs: options.timeoutMs });
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
    const rows = await db
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
      // the bus delivers at least once: a second copy of the event finds the first one's rows
      .onConflict((oc) =>
        oc
          .columns(['endpoint_id', 'event_id'])
          .where('redelivery_of', 'is', null)
          .doUpdateSet({ event_id: (eb) => eb.ref('excluded.event_id') }),
      )
      .returning(['id', 'status'])
      .execute();
    const pending = rows.filter((r) => r.status === 'pending');
    if (pending.length === 0) return;
    // one statement for all of them, after the rows commit: a job per delivery enqueued in the
    // rows' transaction cost two statements each, and 100 endpoints held a pooled connection
    // for 200 of them. The key is what makes this safe: a crash before the jobs exist leaves
    // the event unacknowledged, and its next copy enqueues what is missing and nothing twice.
    await jobs.enqueueBulk(
      ctx,
      pending.map((r) => ({
        type: DELIVER_JOB,
        data: { deliveryId: r.id },
        idempotencyKey: `${DELIVER_JOB}:${r.id}`,
      })),
    );
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

  /** Not an attempt: the same delivery again in `ms`, as a job of its own. */
  const later = (ctx: RequestContext, deliveryId: string, ms: number) =>
    inTransaction(db, (tx) =>
      jobs.enqueueIn(tx, ctx, {
        type: DELIVER_JOB,
        data: { deliveryId },
        runAt: new Date(Date.now() + ms).toISOString(),
      }),
    );

  /** The signed POST, and what came of it. */
  const post = async (d: DeliveryToAttempt) => {
    const body = JSON.stringify(d.payload);
    const timestamp = Math.floor(Date.now() / 1000);
    const signing = [await store.secret(d.secret_id)];
    if (d.previous_secret_id && d.previous_secret_until && d.previous_secret_until > new Date())
      signing.push(await store.secret(d.previous_secret_id));
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
    return { headers, status, responseBody, retryAfter, error, latencyMs: performance.now() - started };
  };

  /** One attempt of one delivery: the job handler. */
  const attempt = async (ctx: RequestContext, deliveryId: string) => {
    const d = await store.load(deliveryId);
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
    // this worker's slots for the endpoint are taken: a slow endpoint waits on its own slots, not everyone's
    const slot = slots.take(d.endpoint_id);
    if ('retryInMs' in slot) return void (await later(ctx, d.id, slot.retryInMs));
    let sent: Awaited<ReturnType<typeof post>> | undefined;
    try {
      // per-endpoint rate limit: over it, the attempt moves to the next window and is not counted
      const window = await options.rateLimits.hit(
        `tenant:${requireTenant(ctx).slug}:webhook:${d.endpoint_id}`,
        1000,
      );
      if (window.count > options.endpointRateLimit) return void (await later(ctx, d.id, window.resetInMs));
      sent = await post(d);
    } finally {
      slot.release(sent?.latencyMs);
    }
    const { status, retryAfter } = sent;
    const number = d.attempts + 1;
    const succeeded = status !== null && status >= 200 && status < 300;
    await store.record({
      deliveryId: d.id,
      endpointId: d.endpoint_id,
      attempt: number,
      requestHeaders: sent.headers,
      responseStatus: status,
      responseBody: sent.responseBody,
      latencyMs: Math.round(sent.latencyMs),
      error: sent.error,
      succeeded,
    });
    if (succeeded) return;
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
