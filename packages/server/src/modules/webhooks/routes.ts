import { Type } from '@sinclair/typebox';
import type { TenantRef } from '../../context.js';
import { responses } from '../../http/schemas.js';
import type { Server } from '../../http/types.js';
import type { TenantLimit } from '../../infra/rate-limit/tenant-limit.js';
import type { WebhookDeliveryLog } from './delivery-log.js';
import type { WebhookEndpointsService } from './endpoints.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const DateTime = Type.String({ format: 'date-time' });

const EndpointSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    appId: Nullable(Type.String({ format: 'uuid' })),
    url: Type.String(),
    description: Nullable(Type.String()),
    eventTypes: Type.Array(Type.String()),
    status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
    disabledReason: Nullable(Type.String()),
    consecutiveFailures: Type.Integer(),
    previousSecretUntil: Nullable(DateTime),
    createdAt: DateTime,
    updatedAt: DateTime,
  },
  { $id: 'WebhookEndpoint' },
);
const WithSecret = Type.Intersect([
  Type.Ref('WebhookEndpoint'),
  Type.Object({ secret: Type.String({ description: 'whsec_…: shown this once' }) }),
]);
const AttemptSchema = Type.Object({
  attempt: Type.Integer(),
  requestHeaders: Type.Record(Type.String(), Type.String()),
  responseStatus: Nullable(Type.Integer()),
  responseBody: Nullable(Type.String({ description: 'the first 4 KB' })),
  latencyMs: Type.Integer(),
  error: Nullable(Type.String()),
  at: DateTime,
});
const DeliverySchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  endpointId: Type.String({ format: 'uuid' }),
  eventId: Type.String(),
  eventType: Type.String(),
  status: Type.Union(['pending', 'succeeded', 'failed'].map((s) => Type.Literal(s))),
  attempts: Type.Array(AttemptSchema),
  nextAttemptAt: Nullable(DateTime),
  redeliveryOf: Nullable(Type.String()),
  createdAt: DateTime,
});
const EndpointBody = {
  // https only unless allow-listed (the outbound guard says so precisely); 2 KB is plenty for a URL
  url: Type.String({ minLength: 1, maxLength: 2048 }),
  eventTypes: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { minItems: 1, maxItems: 50 }),
  description: Type.Optional(Type.String({ maxLength: 1000 })),
};
const Id = Type.Object({ id: Type.String({ maxLength: 64 }) });
const AppParams = Type.Object({ appId: Type.String({ maxLength: 64 }) });

/** Standard Webhooks endpoints (per tenant and per app), their deliveries, redelivery and recovery. */
export async function webhookRoutes(
  server: Server,
  deps: {
    endpoints: WebhookEndpointsService;
    deliveries: WebhookDeliveryLog;
    manageLimit: TenantLimit<TenantRef>;
  },
): Promise<void> {
  const { endpoints, deliveries } = deps;
  // seed 002: webhook management calls count against the tenant's budget
  server.addHook('preHandler', async (request) => {
    const permission = (request.routeOptions.config as { permission?: string }).permission;
    if (permission === 'webhooks:endpoint:manage' && request.ctx.tenant)
      await deps.manageLimit(request.ctx.tenant);
  });
  server.addSchema(EndpointSchema);
  const tags = ['webhooks'];
  const Ref = Type.Ref('WebhookEndpoint');
  const manage = { permission: 'webhooks:endpoint:manage' };
  const read = { permission: 'webhooks:endpoint:read' };

  for (const scoped of [false, true]) {
    const base = scoped ? '/api/v1/apps/:appId/webhooks' : '/api/v1/webhooks';
    server.post(
      base,
      {
        config: { ...manage, idempotent: true },
        schema: {
          tags,
          summary: scoped
            ? "Add a webhook endpoint for this app's events"
            : 'Add a webhook endpoint for the tenant',
          ...(scoped && { params: AppParams }),
          body: Type.Object(EndpointBody, { additionalProperties: false }),
          response: responses({ 201: WithSecret }),
        },
      },
      async (request, reply) => {
        const appId = (request.params as { appId?: string }).appId;
        const created = await endpoints.create(request.ctx, {
          ...request.body,
          ...(appId !== undefined && { appId }),
        });
        return reply.code(201).send(created);
      },
    );
    server.get(
      base,
      {
        config: read,
        schema: {
          tags,
          summary: 'Webhook endpoints',
          ...(scoped && { params: AppParams }),
          response: responses({ 200: Type.Array(Ref) }),
        },
      },
      async (request) => {
        const appId = (request.params as { appId?: string }).appId;
        return endpoints.list(request.ctx, appId !== undefined ? { appId } : {});
      },
    );
  }
  server.get(
    '/api/v1/webhooks/:id',
    {
      config: read,
      schema: { tags, summary: 'One webhook endpoint', params: Id, response: responses({ 200: Ref }) },
    },
    async (request) => endpoints.get(request.ctx, request.params.id),
  );
  server.patch(
    '/api/v1/webhooks/:id',
    {
      config: manage,
      schema: {
        tags,
        summary: 'Change an endpoint; `status: active` re-enables a disabled one',
        params: Id,
        body: Type.Object(
          {
            url: Type.Optional(EndpointBody.url),
            eventTypes: Type.Optional(EndpointBody.eventTypes),
            description: Type.Optional(Type.String({ maxLength: 1000 })),
            status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('disabled')])),
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: Ref }),
      },
    },
    async (request) => endpoints.update(request.ctx, request.params.id, request.body),
  );
  server.delete(
    '/api/v1/webhooks/:id',
    {
      config: manage,
      schema: { tags, summary: 'Delete an endpoint', params: Id, response: responses({ 204: Type.Null() }) },
    },
    async (request, reply) => {
      await endpoints.remove(request.ctx, request.params.id);
      return reply.code(204).send(null);
    },
  );
  server.post(
    '/api/v1/webhooks/:id/rotate-secret',
    {
      config: manage,
      schema: {
        tags,
        summary: 'A new secret; the old one keeps signing (a second signature) for the overlap',
        params: Id,
        body: Type.Object(
          {
            overlapSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 * 86_400, default: 86_400 })),
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: WithSecret }),
      },
    },
    async (request) =>
      endpoints.rotateSecret(request.ctx, request.params.id, request.body.overlapSeconds ?? 86_400),
  );
  server.get(
    '/api/v1/webhooks/:id/deliveries',
    {
      config: read,
      schema: {
        tags,
        summary: "An endpoint's deliveries, newest first, each with its attempts",
        params: Id,
        querystring: Type.Object(
          { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 })) },
          { additionalProperties: false },
        ),
        response: responses({ 200: Type.Array(DeliverySchema) }),
      },
    },
    async (request) => deliveries.list(request.ctx, request.params.id, request.query.limit ?? 50),
  );
  server.post(
    '/api/v1/webhooks/:id/deliveries/:deliveryId/redeliver',
    {
      config: manage,
      schema: {
        tags,
        summary: 'Send one delivery again (a new delivery, attempts from 1)',
        params: Type.Object({
          id: Type.String({ maxLength: 64 }),
          deliveryId: Type.String({ maxLength: 64 }),
        }),
        response: responses({ 202: Type.Object({ deliveryId: Type.String() }) }),
      },
    },
    async (request, reply) =>
      reply.code(202).send({
        deliveryId: await deliveries.redeliver(request.ctx, request.params.id, request.params.deliveryId),
      }),
  );
  server.post(
    '/api/v1/webhooks/:id/recover',
    {
      config: manage,
      schema: {
        tags,
        summary: 'Send again every failed delivery of a time range',
        params: Id,
        body: Type.Object(
          { since: DateTime, until: Type.Optional(DateTime) },
          { additionalProperties: false },
        ),
        response: responses({ 202: Type.Object({ redelivered: Type.Integer() }) }),
      },
    },
    async (request, reply) =>
      reply
        .code(202)
        .send({ redelivered: await deliveries.recover(request.ctx, request.params.id, request.body) }),
  );
}
