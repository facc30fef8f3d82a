import { Type } from '@sinclair/typebox';
import { type RequestContext, toTenantRef } from '../../../context.js';
import { IdParams, Page, Paging, pageOf, responses, Uuid } from '../../../http/schemas.js';
import type { Server } from '../../../http/types.js';
import type { TenantsService } from '../../tenants/index.js';
import type { SessionsService } from '../sessions.js';
import type { UsersService } from '../users.js';
import { Session } from './auth.js';

export const UserSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    email: Type.String(),
    displayName: Type.Union([Type.String(), Type.Null()]),
    status: Type.Union([Type.Literal('active'), Type.Literal('disabled')]),
    roles: Type.Array(Type.String()),
    external: Type.Boolean(),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
    lastLoginAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { $id: 'User' },
);

const RoleKey = Type.String({ minLength: 1, maxLength: 64 });
const CreateUser = Type.Object(
  {
    email: Type.String({ format: 'email', maxLength: 320 }),
    password: Type.Optional(Type.String({ maxLength: 1024 })),
    displayName: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    roles: Type.Optional(Type.Array(RoleKey, { maxItems: 50 })),
  },
  { additionalProperties: false },
);
const UpdateUser = Type.Object(
  {
    displayName: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 200 }), Type.Null()])),
    status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('disabled')])),
    roles: Type.Optional(Type.Array(RoleKey, { maxItems: 50 })),
    password: Type.Optional(Type.String({ maxLength: 1024 })),
  },
  { additionalProperties: false, minProperties: 1 },
);
const ListQuery = Type.Object(
  { ...Paging, email: Type.Optional(Type.String({ maxLength: 320 })) },
  { additionalProperties: false },
);

/**
 * Users of the caller's tenant under /api/v1/users, and of any tenant under
 * /api/v1/tenants/{id}/users for a super admin.
 */
export async function userRoutes(
  server: Server,
  deps: { users: UsersService; sessions: SessionsService; tenants: TenantsService },
): Promise<void> {
  const { users, sessions, tenants } = deps;
  const tag = { tags: ['users'] };

  for (const scope of ['tenant', 'platform'] as const) {
    const base = scope === 'tenant' ? '/api/v1/users' : '/api/v1/tenants/:tenantId/users';
    const params = (extra = {}) =>
      scope === 'tenant' ? Type.Object({ ...extra }) : Type.Object({ tenantId: Uuid, ...extra });
    const ctxOf = async (ctx: RequestContext, params: { tenantId?: string }): Promise<RequestContext> => {
      if (scope === 'tenant' || !params.tenantId) return ctx;
      return { ...ctx, tenant: toTenantRef(await tenants.get(params.tenantId)) };
    };
    const guard = (permission: string) => ({ permission, ...(scope === 'platform' && { platform: true }) });

    server.post(
      base,
      {
        config: { ...guard('core:user:create'), idempotent: true },
        schema: {
          ...tag,
          summary: 'Create a user',
          params: params(),
          body: CreateUser,
          response: responses({ 201: UserSchema }),
        },
      },
      async (request, reply) =>
        reply.status(201).send(await users.create(await ctxOf(request.ctx, request.params), request.body)),
    );
    server.get(
      base,
      {
        config: guard('core:user:read'),
        schema: {
          ...tag,
          summary: 'List users',
          params: params(),
          querystring: ListQuery,
          response: responses({ 200: Page(UserSchema) }),
        },
      },
      async (request) =>
        users.list(await ctxOf(request.ctx, request.params), { ...request.query, ...pageOf(request.query) }),
    );
    server.get(
      `${base}/:id`,
      {
        config: guard('core:user:read'),
        schema: {
          ...tag,
          summary: 'Get a user',
          params: params({ id: Uuid }),
          response: responses({ 200: UserSchema }),
        },
      },
      async (request) =>
        users.get(await ctxOf(request.ctx, request.params), (request.params as { id: string }).id),
    );
    server.patch(
      `${base}/:id`,
      {
        config: guard('core:user:update'),
        schema: {
          ...tag,
          summary: 'Change a user (a new password or disabling ends their sessions)',
          params: params({ id: Uuid }),
          body: UpdateUser,
          response: responses({ 200: UserSchema }),
        },
      },
      async (request) =>
        users.update(
          await ctxOf(request.ctx, request.params),
          (request.params as { id: string }).id,
          request.body,
        ),
    );
    server.delete(
      `${base}/:id`,
      {
        config: guard('core:user:delete'),
        schema: {
          ...tag,
          summary: 'Delete a user',
          params: params({ id: Uuid }),
          response: responses({ 204: Type.Null() }),
        },
      },
      async (request, reply) => {
        await users.remove(await ctxOf(request.ctx, request.params), (request.params as { id: string }).id);
        return reply.status(204).send(null);
      },
    );
  }

  server.get(
    '/api/v1/users/:id/sessions',
    {
      config: { permission: 'core:session:manage' },
      schema: {
        ...tag,
        summary: "A user's active sessions",
        params: IdParams,
        response: responses({ 200: Type.Array(Session) }),
      },
    },
    async (request) => {
      await users.assertManageable(request.ctx, request.params.id);
      return sessions.list(request.ctx, request.params.id);
    },
  );
  server.delete(
    '/api/v1/users/:id/sessions/:sessionId',
    {
      config: { permission: 'core:session:manage' },
      schema: {
        ...tag,
        summary: "Revoke a user's session",
        params: Type.Object({ id: Uuid, sessionId: Uuid }),
        response: responses({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      await users.assertManageable(request.ctx, request.params.id);
      await sessions.revoke(request.ctx, request.params.id, request.params.sessionId);
      return reply.status(204).send(null);
    },
  );
}
