import type { Kysely, Selectable } from 'kysely';
import { type RequestContext, requireTenant } from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import { inTransaction } from '../../infra/database/transaction.js';
import { PlexicaError } from '../../infra/errors.js';
import type { OutboundGuard } from '../../infra/net/outbound-guard.js';
import { UUID } from '../../infra/uuid.js';
import type { AuditService } from '../audit/index.js';
import { parseTopicPattern } from '../events/envelope.js';
import type { AppsService } from '../events/index.js';
import type { SecretsService } from '../secrets/index.js';
import { newWebhookSecret } from './signing.js';
import type { WebhookEndpointsTable, WebhooksTables } from './tables.js';

export interface WebhookEndpoint {
  id: string;
  appId: string | null;
  url: string;
  description: string | null;
  eventTypes: string[];
  status: 'active' | 'disabled';
  disabledReason: string | null;
  consecutiveFailures: number;
  /** While set, deliveries are signed with the previous secret too. */
  previousSecretUntil: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface EndpointInput {
  url: string;
  eventTypes: string[];
  description?: string;
}

export interface WebhookEndpointsService {
  /** @returns the endpoint and its `whsec_` secret, shown this once */
  create(
    ctx: RequestContext,
    input: EndpointInput & { appId?: string },
  ): Promise<WebhookEndpoint & { secret: string }>;
  list(ctx: RequestContext, filter: { appId?: string }): Promise<WebhookEndpoint[]>;
  get(ctx: RequestContext, id: string): Promise<WebhookEndpoint>;
  update(
    ctx: RequestContext,
    id: string,
    input: Partial<EndpointInput> & { status?: 'active' | 'disabled' },
  ): Promise<WebhookEndpoint>;
  remove(ctx: RequestContext, id: string): Promise<void>;
  /** A new secret; the old one keeps signing for `overlapSeconds`. @returns the new secret, shown once */
  rotateSecret(
    ctx: RequestContext,
    id: string,
    overlapSeconds: number,
  ): Promise<WebhookEndpoint & { secret: string }>;
}

export const toEndpoint = (row: Selectable<WebhookEndpointsTable>): WebhookEndpoint => ({
  id: row.id,
  appId: row.app_id,
  url: row.url,
  description: row.description,
  eventTypes: row.event_types,
  status: row.status,
  disabledReason: row.disabled_reason,
  consecutiveFailures: row.consecutive_failures,
  previousSecretUntil:
    row.previous_secret_until && row.previous_secret_until > new Date()
      ? row.previous_secret_until.toISOString()
      : null,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
});

/** Event type patterns: the topic grammar, and at least two segments (every type has two). */
function checkEventTypes(patterns: string[]): void {
  for (const pattern of patterns) {
    const segments = parseTopicPattern(pattern);
    if (segments.length < 2 && segments[0] !== '*')
      throw new PlexicaError('PLX_WEBHOOK_FILTER_NEVER_MATCHES', {
        detail: `"${pattern}" has one segment and no wildcard; every event type has at least two`,
      });
  }
}

export function createWebhookEndpointsService(deps: {
  db: Executor;
  secrets: SecretsService;
  apps: AppsService;
  guard: OutboundGuard;
  audit: AuditService;
}): WebhookEndpointsService {
  const db: Kysely<WebhooksTables> = deps.db;
  const { secrets, apps, guard, audit } = deps;
  const notFound = () => new PlexicaError('PLX_WEBHOOK_NOT_FOUND');
  const row = async (ctx: RequestContext, id: string) => {
    const tenant = requireTenant(ctx);
    if (!UUID.test(id)) throw notFound();
    const found = await db
      .selectFrom('core.webhook_endpoints')
      .selectAll()
      .where('tenant_id', '=', tenant.id)
      .where('id', '=', id)
      .executeTakeFirst();
    if (!found) throw notFound();
    return found;
  };
  return {
    async create(ctx, input) {
      const tenant = requireTenant(ctx);
      checkEventTypes(input.eventTypes);
      const app = input.appId !== undefined ? await apps.get(ctx, input.appId) : undefined;
      // SSRF: refused now, and again at every delivery (the name may resolve elsewhere later)
      await guard.assertSafeUrl(input.url);
      const secret = newWebhookSecret();
      const created = await inTransaction(db, async (tx) => {
        const secretId = await secrets.create(
          { name: 'webhook-endpoint', tenantId: tenant.id, value: secret },
          tx.db,
        );
        const inserted = await (tx.db as Kysely<WebhooksTables>)
          .insertInto('core.webhook_endpoints')
          .values({
            tenant_id: tenant.id,
            app_id: app?.id ?? null,
            url: input.url,
            description: input.description ?? null,
            event_types: input.eventTypes,
            secret_id: secretId,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        await audit.record(
          ctx,
          {
            action: 'webhook_endpoint.created',
            targetType: 'webhook_endpoint',
            targetId: inserted.id,
            data: { url: input.url },
          },
          tx,
        );
        return inserted;
      });
      return { ...toEndpoint(created), secret };
    },
    async list(ctx, filter) {
      const tenant = requireTenant(ctx);
      let query = db.selectFrom('core.webhook_endpoints').selectAll().where('tenant_id', '=', tenant.id);
      if (filter.appId !== undefined)
        query = query.where('app_id', '=', (await apps.get(ctx, filter.appId)).id);
      const rows = await query.orderBy('created_at').orderBy('id').execute();
      return rows.map(toEndpoint);
    },
    get: async (ctx, id) => toEndpoint(await row(ctx, id)),
    async update(ctx, id, input) {
      const current = await row(ctx, id);
      if (input.eventTypes) checkEventTypes(input.eventTypes);
      if (input.url !== undefined) await guard.assertSafeUrl(input.url);
      const updated = await db
        .updateTable('core.webhook_endpoints')
        .set({
          ...(input.url !== undefined && { url: input.url }),
          ...(input.eventTypes !== undefined && { event_types: input.eventTypes }),
          ...(input.description !== undefined && { description: input.description }),
          ...(input.status === 'active' && {
            status: 'active',
            disabled_reason: null,
            consecutive_failures: 0,
          }),
          ...(input.status === 'disabled' && { status: 'disabled', disabled_reason: 'disabled by an admin' }),
          updated_at: new Date(),
        })
        .where('id', '=', current.id)
        .returningAll()
        .executeTakeFirstOrThrow();
      return toEndpoint(updated);
    },
    async remove(ctx, id) {
      const current = await row(ctx, id);
      await inTransaction(db, async (tx) => {
        await (tx.db as Kysely<WebhooksTables>)
          .deleteFrom('core.webhook_endpoints')
          .where('id', '=', current.id)
          .execute();
        for (const secretId of [current.secret_id, current.previous_secret_id])
          if (secretId) await secrets.remove(secretId, tx.db);
        await audit.record(
          ctx,
          { action: 'webhook_endpoint.deleted', targetType: 'webhook_endpoint', targetId: current.id },
          tx,
        );
      });
    },
    async rotateSecret(ctx, id, overlapSeconds) {
      const current = await row(ctx, id);
      const secret = newWebhookSecret();
      const updated = await inTransaction(db, async (tx) => {
        if (current.previous_secret_id) await secrets.remove(current.previous_secret_id, tx.db);
        const secretId = await secrets.create(
          { name: 'webhook-endpoint', tenantId: current.tenant_id, value: secret },
          tx.db,
        );
        const result = await (tx.db as Kysely<WebhooksTables>)
          .updateTable('core.webhook_endpoints')
          .set({
            secret_id: secretId,
            previous_secret_id: current.secret_id,
            previous_secret_until: new Date(Date.now() + overlapSeconds * 1000),
            updated_at: new Date(),
          })
          .where('id', '=', current.id)
          .returningAll()
          .executeTakeFirstOrThrow();
        await audit.record(
          ctx,
          {
            action: 'webhook_endpoint.secret_rotated',
            targetType: 'webhook_endpoint',
            targetId: current.id,
            data: { overlapSeconds },
          },
          tx,
        );
        return result;
      });
      return { ...toEndpoint(updated), secret };
    },
  };
}
