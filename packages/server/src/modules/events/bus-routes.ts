import { Type } from '@sinclair/typebox';
import type { RequestContext } from '../../context.js';
import { requireTenant } from '../../context.js';
import { responses } from '../../http/schemas.js';
import type { Server } from '../../http/types.js';
import { PlexicaError } from '../../infra/errors.js';
import type { AuditService } from '../audit/index.js';
import type { DeadLetter, DeadLetterScope } from './dead-letters.js';
import type { EventBus } from './service.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const DateTime = Type.String({ format: 'date-time' });
const GroupName = Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]*$' });

const DeadLetterSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    group: Type.String({ description: 'the consumer group that gave up on the event' }),
    topic: Type.String(),
    position: Type.String({ description: "the event's place in the engine's log (give it to a replay)" }),
    eventId: Type.String({ format: 'uuid' }),
    tenantId: Nullable(Type.String({ format: 'uuid', description: 'null for a platform (global.*) event' })),
    error: Type.String({ description: "the handler's last error" }),
    attempts: Type.Integer(),
    payload: Type.Record(Type.String(), Type.Unknown(), { description: 'the CloudEvents envelope' }),
    createdAt: DateTime,
    redrivenAt: Nullable(DateTime),
  },
  { $id: 'DeadLetter' },
);
const DeadLetterRef = Type.Ref('DeadLetter');
const ConsumerGroupSchema = Type.Object(
  {
    name: Type.String(),
    topics: Type.Array(Type.String()),
    subscribedAt: DateTime,
    lag: Type.Integer({ description: 'events the group has still to work through' }),
  },
  { $id: 'ConsumerGroup' },
);
const DeadLetterParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });
const GroupParams = Type.Object({ group: GroupName });

const toJson = (d: DeadLetter) => ({
  ...d,
  payload: d.payload as unknown as Record<string, unknown>,
  createdAt: d.createdAt.toISOString(),
  redrivenAt: d.redrivenAt?.toISOString() ?? null,
});

/**
 * A tenant's admins see and re-drive their tenant's dead letters only; a super
 * admin sees every one (platform events' too), or one tenant's with X-Tenant-ID.
 */
function scopeOf(ctx: RequestContext): DeadLetterScope {
  if (ctx.tenant) return { tenantId: ctx.tenant.id };
  if (ctx.principal?.isSuperAdmin) return {};
  return { tenantId: requireTenant(ctx).id };
}

/**
 * seed 003's dead letter queue, and replay of a consumer group. A group is
 * platform-wide (it serves every tenant), so moving it is a super admin's.
 */
export async function busRoutes(server: Server, deps: { bus: EventBus; audit: AuditService }): Promise<void> {
  const { bus, audit } = deps;
  server.addSchema(DeadLetterSchema);
  server.addSchema(ConsumerGroupSchema);
  const tags = ['events'];
  /** A tenant's re-drive is a change in its audit log; a super admin's platform-wide one is in the request log. */
  const recordRedrive = async (ctx: RequestContext, redriven: DeadLetter[]) => {
    if (!ctx.tenant) return;
    await audit.recordAll(
      ctx,
      redriven.map((d) => ({
        action: 'event_dead_letter.redriven',
        targetType: 'event_dead_letter',
        targetId: d.id,
        data: { group: d.group, topic: d.topic, eventId: d.eventId },
      })),
    );
  };

  server.get(
    '/api/v1/dead-letters',
    {
      config: { permission: 'events:dead-letter:read' },
      schema: {
        tags,
        summary: 'Dead letters: events a consumer group gave up on, newest first',
        description:
          "A tenant's admins see the tenant's; a super admin every one (or a tenant's, with X-Tenant-ID). " +
          '`topic` is a topic pattern (`acme.crm.*`); `from`/`to` bound when the event was dead-lettered.',
        querystring: Type.Object(
          {
            group: Type.Optional(GroupName),
            topic: Type.Optional(Type.String({ minLength: 1, maxLength: 264 })),
            type: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            from: Type.Optional(DateTime),
            to: Type.Optional(DateTime),
            redriven: Type.Optional(Type.Boolean()),
            cursor: Type.Optional(Type.String({ maxLength: 200 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 })),
          },
          { additionalProperties: false },
        ),
        response: responses({
          200: Type.Object({
            data: Type.Array(DeadLetterRef),
            nextCursor: Nullable(Type.String({ description: 'pass as `cursor` for the next (older) page' })),
          }),
        }),
      },
    },
    async (request) => {
      const page = await bus.deadLetters.page(scopeOf(request.ctx), {
        ...request.query,
        limit: request.query.limit ?? 50,
      });
      return { data: page.data.map(toJson), nextCursor: page.nextCursor };
    },
  );
  server.get(
    '/api/v1/dead-letters/:id',
    {
      config: { permission: 'events:dead-letter:read' },
      schema: {
        tags,
        summary: 'One dead letter',
        params: DeadLetterParams,
        response: responses({ 200: DeadLetterRef }),
      },
    },
    async (request) => toJson(await bus.deadLetters.get(request.params.id, scopeOf(request.ctx))),
  );
  server.post(
    '/api/v1/dead-letters/:id/redrive',
    {
      config: { permission: 'events:dead-letter:redrive' },
      schema: {
        tags,
        summary: 'Deliver a dead letter to its consumer group again (that group only, fresh attempts)',
        description:
          'Once: a second re-drive is 409 `PLX_EVENT_DEAD_LETTER_REDRIVEN`; failing again makes a new dead letter.',
        params: DeadLetterParams,
        response: responses({ 200: DeadLetterRef }),
      },
    },
    async (request) => {
      const redriven = await bus.deadLetters.redrive(request.params.id, scopeOf(request.ctx));
      await recordRedrive(request.ctx, [redriven]);
      return toJson(redriven);
    },
  );
  server.post(
    '/api/v1/dead-letters/redrive',
    {
      config: { permission: 'events:dead-letter:redrive' },
      schema: {
        tags,
        summary: 'Re-drive a selection of dead letters',
        description:
          'Nothing is re-driven unless every id is found (404) and none was re-driven before (409).',
        body: Type.Object(
          {
            ids: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), { minItems: 1, maxItems: 100 }),
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: Type.Object({ data: Type.Array(DeadLetterRef) }) }),
      },
    },
    async (request) => {
      const redriven = await bus.deadLetters.redriveMany(request.body.ids, scopeOf(request.ctx));
      await recordRedrive(request.ctx, redriven);
      return { data: redriven.map(toJson) };
    },
  );

  server.get(
    '/api/v1/event-groups',
    {
      config: { permission: 'events:group:read', platform: true },
      schema: {
        tags,
        summary: 'The consumer groups that subscribed, with their topics and lag (super admins)',
        response: responses({ 200: Type.Array(Type.Ref('ConsumerGroup')) }),
      },
    },
    async () => {
      const groups = await bus.consumerGroups.list();
      return Promise.all(
        groups.map(async (g) => ({
          ...g,
          subscribedAt: g.subscribedAt.toISOString(),
          lag: await bus.lag(g.name),
        })),
      );
    },
  );
  server.post(
    '/api/v1/event-groups/:group/replay',
    {
      config: { permission: 'events:group:replay', platform: true },
      schema: {
        tags,
        summary: 'Replay a consumer group from a position or a point in time (super admins)',
        description:
          "The group's next deliveries start there, for every tenant it serves. `position` is an event's " +
          "place in the engine's log (a dead letter's `position`; 404 `PLX_EVENT_POSITION_UNKNOWN` when it " +
          'is not retained); `time` must not be in the future (`PLX_EVENT_REPLAY_FUTURE`).',
        params: GroupParams,
        body: Type.Object(
          {
            position: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
            time: Type.Optional(DateTime),
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: Type.Ref('ConsumerGroup') }),
      },
    },
    async (request) => {
      const { position, time } = request.body;
      if ((position === undefined) === (time === undefined))
        throw new PlexicaError('PLX_EVENT_REPLAY_POINT_INVALID', {
          detail: 'give either position or time',
          errors: [{ field: 'body', message: 'exactly one of position and time' }],
        });
      const group = await bus.consumerGroups.get(request.params.group);
      await bus.replay(
        { group: group.name, topics: group.topics },
        position !== undefined ? { position } : { time: new Date(time as string) },
      );
      request.log.info({ group: group.name, position, time }, 'consumer group replayed');
      return { ...group, subscribedAt: group.subscribedAt.toISOString(), lag: await bus.lag(group.name) };
    },
  );
}
