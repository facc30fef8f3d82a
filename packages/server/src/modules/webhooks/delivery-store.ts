import { type Kysely, sql } from 'kysely';
import { createBatcher } from '../../infra/batcher.js';
import type { SecretsService } from '../secrets/index.js';
import type { WebhookAttempt } from './delivery-log.js';
import type { WebhooksTables } from './tables.js';

/** The most deliveries one load or record statement touches. */
const BATCH = 500;
/** Decrypted endpoint secrets kept; the least recently used goes first. */
const SECRETS_KEPT = 10_000;

/** What one attempt reads of its delivery and endpoint. */
export interface DeliveryToAttempt {
  id: string;
  status: 'pending' | 'succeeded' | 'failed';
  attempts: number;
  payload: unknown;
  event_id: string;
  endpoint_id: string;
  url: string;
  endpoint_status: 'active' | 'disabled';
  secret_id: string;
  previous_secret_id: string | null;
  previous_secret_until: Date | null;
}

/** One attempt as the log keeps it; `succeeded` also settles the delivery and clears the endpoint's failures. */
export interface AttemptRecord extends Omit<WebhookAttempt, 'at'> {
  deliveryId: string;
  endpointId: string;
  succeeded: boolean;
}

// PostgreSQL text (and jsonb) cannot hold U+0000; a receiver may well answer with one
const storable = (text: string | null) => text?.replaceAll('\u0000', '\uFFFD') ?? null;

/**
 * The reads and writes of the attempt path, batched: deliveries that start
 * together are loaded in one statement, and attempts that end together are
 * recorded in one (the attempt rows, the settled deliveries and the reset
 * failure counts), so a busy worker commits a few times per batch instead of
 * three times per delivery (each commit a WAL flush on PostgreSQL, a round
 * trip on the one embedded connection).
 */
export function createDeliveryStore(db: Kysely<WebhooksTables>, secrets: SecretsService) {
  const load = createBatcher(
    async (ids: string[]) => {
      const rows = await db
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
        .where('d.id', '=', sql<string>`any(${ids}::uuid[])`)
        .execute();
      const byId = new Map(rows.map((row) => [row.id, row]));
      return ids.map((id): DeliveryToAttempt | undefined => byId.get(id));
    },
    { maxBatch: BATCH, parallel: 2 },
  );

  const record = createBatcher(
    async (items: AttemptRecord[]) => {
      const rows = items.map((r) => ({
        ...r,
        responseBody: storable(r.responseBody),
        error: storable(r.error),
      }));
      // an update that matches no row writes nothing: a healthy endpoint's row is left alone
      await sql`
        with o as (
          select * from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as o(
            "deliveryId" uuid, "endpointId" uuid, attempt integer, "requestHeaders" jsonb,
            "responseStatus" integer, "responseBody" text, "latencyMs" integer, error text, succeeded boolean)
        ), attempts as (
          insert into core.webhook_attempts
            (delivery_id, attempt, request_headers, response_status, response_body, latency_ms, error)
          select "deliveryId", attempt, "requestHeaders", "responseStatus", "responseBody", "latencyMs", error from o
        ), settled as (
          update core.webhook_deliveries as d
          set status = 'succeeded', attempts = o.attempt, last_status = o."responseStatus",
              next_attempt_at = null, updated_at = now()
          from o where d.id = o."deliveryId" and o.succeeded
        )
        update core.webhook_endpoints as e set consecutive_failures = 0
        where e.id = any(${[...new Set(rows.filter((r) => r.succeeded).map((r) => r.endpointId))]}::uuid[])
          and e.consecutive_failures <> 0`.execute(db);
      return items.map(() => undefined);
    },
    { maxBatch: BATCH, parallel: 2 },
  );

  // a secret id names one value for good: rotation makes a new secret, and webhooks never update one in place
  const kept = new Map<string, string>();
  const secret = async (id: string) => {
    const hit = kept.get(id);
    if (hit !== undefined) {
      kept.delete(id);
      kept.set(id, hit);
      return hit;
    }
    const value = await secrets.read(id);
    kept.set(id, value);
    if (kept.size > SECRETS_KEPT) kept.delete(kept.keys().next().value as string);
    return value;
  };

  return {
    /** The delivery and its endpoint, or undefined when it is gone. */
    load,
    /** Writes the attempt (and for a success, the delivery's outcome). */
    record,
    /** The decrypted secret `id`, read once per process (a removed one is never asked for again). */
    secret,
  };
}

export type DeliveryStore = ReturnType<typeof createDeliveryStore>;
