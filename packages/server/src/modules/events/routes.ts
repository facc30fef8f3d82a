import { Type } from '@sinclair/typebox';
import { JSON_BOUNDS_KEYWORD } from '../../http/bounded-json.js';
import { Paging, pageOf, responses } from '../../http/schemas.js';
import type { Server } from '../../http/types.js';
import type { AppsService } from './apps.js';
import type { EventLogFilter, PlatformEventsService } from './platform-events.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const DateTime = Type.String({ format: 'date-time' });
const Segment = Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9][a-z0-9_-]*$' });

const AppSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    name: Type.String(),
    description: Nullable(Type.String()),
    source: Type.String({ description: 'the CloudEvents `source` of what the app publishes' }),
    createdAt: DateTime,
    updatedAt: DateTime,
  },
  { $id: 'App' },
);
const PlatformEventSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    appId: Nullable(Type.String({ format: 'uuid' })),
    source: Type.String(),
    category: Type.String(),
    type: Type.String({ description: '`{category}.{type}` as published' }),
    entityType: Nullable(Type.String()),
    entityId: Nullable(Type.String()),
    data: Type.Unknown(),
    traceId: Nullable(Type.String()),
    occurredAt: DateTime,
    createdAt: DateTime,
  },
  { $id: 'PlatformEvent' },
);
const EventPage = Type.Object({
  data: Type.Array(Type.Ref('PlatformEvent')),
  nextCursor: Nullable(Type.String({ description: 'pass as `cursor` for the next (older) page' })),
});
const AppParams = Type.Object({ appId: Type.String({ minLength: 1, maxLength: 64 }) });
const Name = Type.String({ minLength: 1, maxLength: 100 });
const Description = Type.String({ maxLength: 1000 });
const Filters = {
  category: Type.Optional(Type.String({ maxLength: 64 })),
  type: Type.Optional(Type.String({ maxLength: 200 })),
  entityType: Type.Optional(Type.String({ maxLength: 100 })),
  entityId: Type.Optional(Type.String({ maxLength: 200 })),
  from: Type.Optional(DateTime),
  to: Type.Optional(DateTime),
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 })),
};

/** seed 002: apps, and the platform events API (publish and query). */
export async function eventRoutes(
  server: Server,
  deps: { apps: AppsService; events: PlatformEventsService },
): Promise<void> {
  const { apps, events } = deps;
  server.addSchema(AppSchema);
  server.addSchema(PlatformEventSchema);
  const tags = ['events'];
  const AppRef = Type.Ref('App');
  const filterOf = (query: Omit<EventLogFilter, 'limit'> & { limit?: number }): EventLogFilter => ({
    ...query,
    limit: query.limit ?? 50,
  });

  server.post(
    '/api/v1/apps',
    {
      config: { permission: 'events:app:manage', idempotent: true },
      schema: {
        tags,
        summary: 'Register a client application of the tenant',
        body: Type.Object(
          { name: Name, description: Type.Optional(Description) },
          { additionalProperties: false },
        ),
        response: responses({ 201: AppRef }),
      },
    },
    async (request, reply) => reply.code(201).send(await apps.create(request.ctx, request.body)),
  );
  server.get(
    '/api/v1/apps',
    {
      config: { permission: 'events:app:read' },
      schema: {
        tags,
        summary: "The tenant's apps",
        querystring: Type.Object(Paging, { additionalProperties: false }),
        response: responses({ 200: Type.Array(AppRef) }),
      },
    },
    async (request) => apps.list(request.ctx, pageOf(request.query)),
  );
  server.get(
    '/api/v1/apps/:appId',
    {
      config: { permission: 'events:app:read' },
      schema: { tags, summary: 'One app', params: AppParams, response: responses({ 200: AppRef }) },
    },
    async (request) => apps.get(request.ctx, request.params.appId),
  );
  server.patch(
    '/api/v1/apps/:appId',
    {
      config: { permission: 'events:app:manage' },
      schema: {
        tags,
        summary: 'Rename an app or change its description',
        params: AppParams,
        body: Type.Object(
          { name: Type.Optional(Name), description: Type.Optional(Nullable(Description)) },
          { additionalProperties: false },
        ),
        response: responses({ 200: AppRef }),
      },
    },
    async (request) => apps.update(request.ctx, request.params.appId, request.body),
  );
  server.delete(
    '/api/v1/apps/:appId',
    {
      config: { permission: 'events:app:manage' },
      schema: {
        tags,
        summary: 'Delete an app and its events',
        params: AppParams,
        response: responses({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      await apps.remove(request.ctx, request.params.appId);
      return reply.code(204).send(null);
    },
  );

  server.post(
    '/api/v1/apps/:appId/events',
    {
      config: { permission: 'events:event:publish', idempotent: true },
      schema: {
        tags,
        summary: 'Publish an event as this app',
        description:
          'Stored in the event log and published on the bus as `{tenant}.{category}.{type}` with the app as source. ' +
          '`data` is at most 64 KB serialised (`PLX_EVENT_TOO_LARGE`). The same `idempotencyKey` returns the first event (200).',
        params: AppParams,
        body: Type.Object(
          {
            category: Segment,
            type: Type.String({
              minLength: 1,
              maxLength: 135,
              description: 'segment(.segment)*, e.g. deal.created',
            }),
            entityType: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
            entityId: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            // the depth bound here; the 64 KB bound is the bus's, so it answers PLX_EVENT_TOO_LARGE
            data: Type.Optional(
              Type.Unknown({ [JSON_BOUNDS_KEYWORD]: { maxDepth: 64, maxBytes: 1024 * 1024 } }),
            ),
            occurredAt: Type.Optional(DateTime),
            idempotencyKey: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: Type.Ref('PlatformEvent'), 201: Type.Ref('PlatformEvent') }),
      },
    },
    async (request, reply) => {
      const { event, created } = await events.publish(request.ctx, request.params.appId, request.body);
      return reply.code(created ? 201 : 200).send(event);
    },
  );
  server.get(
    '/api/v1/apps/:appId/events',
    {
      config: { permission: 'events:event:read' },
      schema: {
        tags,
        summary: "An app's events, newest first",
        params: AppParams,
        querystring: Type.Object(Filters, { additionalProperties: false }),
        response: responses({ 200: EventPage }),
      },
    },
    async (request) => events.list(request.ctx, { ...filterOf(request.query), appId: request.params.appId }),
  );
  server.get(
    '/api/v1/events',
    {
      config: { permission: 'events:event:read' },
      schema: {
        tags,
        summary: "The tenant's event log (every app's and the core's), newest first",
        querystring: Type.Object(
          { ...Filters, appId: Type.Optional(Type.String({ maxLength: 64 })) },
          { additionalProperties: false },
        ),
        response: responses({ 200: EventPage }),
      },
    },
    async (request) => events.list(request.ctx, filterOf(request.query)),
  );
}
