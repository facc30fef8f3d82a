import { Type } from '@sinclair/typebox';
import type { Principal } from '../../../context.js';
import { responses } from '../../../http/schemas.js';
import type { Server } from '../../../http/types.js';
import { PlexicaError } from '../../../infra/errors.js';
import type { PasswordChangesService } from '../password-changes.js';
import type { SessionsService } from '../sessions.js';
import type { TokenIssuer } from '../tokens.js';

const TokenPair = Type.Object(
  {
    accessToken: Type.String(),
    refreshToken: Type.String(),
    expiresIn: Type.Integer({ description: 'Access token lifetime in seconds' }),
    tokenType: Type.Literal('Bearer'),
  },
  { $id: 'TokenPair' },
);

export const Session = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    kind: Type.String(),
    userAgent: Type.Union([Type.String(), Type.Null()]),
    ip: Type.Union([Type.String(), Type.Null()]),
    createdAt: Type.String({ format: 'date-time' }),
    lastUsedAt: Type.String({ format: 'date-time' }),
    expiresAt: Type.String({ format: 'date-time' }),
    current: Type.Boolean(),
  },
  { $id: 'Session' },
);

const Me = Type.Object({
  type: Type.Union([Type.Literal('user'), Type.Literal('api_key')]),
  id: Type.String(),
  userId: Type.Union([Type.String(), Type.Null()]),
  isSuperAdmin: Type.Boolean(),
  roles: Type.Array(Type.String()),
  permissions: Type.Array(Type.String()),
  tenant: Type.Union([Type.Object({ id: Type.String(), slug: Type.String() }), Type.Null()]),
});

/** Login, refresh, logout, the caller's own identity and sessions, and the public JWKS. */
export async function authRoutes(
  server: Server,
  deps: { sessions: SessionsService; tokens: TokenIssuer; passwords: PasswordChangesService },
): Promise<void> {
  const { sessions, tokens, passwords } = deps;
  server.post(
    '/api/v1/auth/login',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['auth'],
        summary: 'Log in with email and password (omit tenant for a super admin)',
        security: [],
        body: Type.Object(
          {
            email: Type.String({ minLength: 3, maxLength: 320 }),
            password: Type.String({ minLength: 1, maxLength: 1024 }),
            tenant: Type.Optional(
              Type.String({ minLength: 1, maxLength: 64, description: 'Tenant slug or id' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: TokenPair }),
      },
    },
    async (request) =>
      sessions.login(request.ctx, request.body, {
        userAgent: request.headers['user-agent'],
        ip: request.ip,
      }),
  );
  server.post(
    '/api/v1/auth/refresh',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['auth'],
        summary: 'Exchange a refresh token for a new pair (the old refresh token stops working)',
        security: [],
        body: Type.Object(
          { refreshToken: Type.String({ minLength: 1, maxLength: 512 }) },
          { additionalProperties: false },
        ),
        response: responses({ 200: TokenPair }),
      },
    },
    async (request) => sessions.refresh(request.body.refreshToken),
  );
  server.post(
    '/api/v1/auth/logout',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['auth'],
        summary: 'Revoke the session of a refresh token',
        security: [],
        body: Type.Object(
          { refreshToken: Type.String({ minLength: 1, maxLength: 512 }) },
          { additionalProperties: false },
        ),
        response: responses({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      await sessions.logout(request.ctx, request.body.refreshToken);
      return reply.status(204).send(null);
    },
  );
  server.get(
    '/api/v1/auth/me',
    {
      config: { auth: 'authenticated' },
      schema: { tags: ['auth'], summary: 'Who am I', response: responses({ 200: Me }) },
    },
    async (request) => {
      const { principal, tenant } = request.ctx;
      if (!principal) throw new Error('guard let an anonymous request through');
      return {
        type: principal.type,
        id: principal.id,
        userId: principal.userId,
        isSuperAdmin: principal.isSuperAdmin,
        roles: principal.roles,
        permissions: [...principal.permissions].sort(),
        tenant: tenant ? { id: tenant.id, slug: tenant.slug } : null,
      };
    },
  );
  server.get(
    '/api/v1/auth/sessions',
    {
      config: { auth: 'authenticated' },
      schema: {
        tags: ['auth'],
        summary: "The caller's active sessions",
        response: responses({ 200: Type.Array(Session) }),
      },
    },
    async (request) => sessions.list(request.ctx, ownUserId(request.ctx.principal)),
  );
  server.delete(
    '/api/v1/auth/sessions/:id',
    {
      config: { auth: 'authenticated' },
      schema: {
        tags: ['auth'],
        summary: 'Revoke one of the caller’s sessions',
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        response: responses({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      await sessions.revoke(request.ctx, ownUserId(request.ctx.principal), request.params.id);
      return reply.status(204).send(null);
    },
  );
  server.post(
    '/api/v1/auth/password',
    {
      config: { auth: 'authenticated' },
      schema: {
        tags: ['auth'],
        summary: 'Change your own password (with the current one); your other sessions end',
        description:
          'Any user may, without core:user:update. The new password: 10 to 256 characters, at least 4 ' +
          'different ones. The session making the change stays signed in.',
        body: Type.Object(
          {
            currentPassword: Type.String({ minLength: 1, maxLength: 1024 }),
            newPassword: Type.String({ minLength: 1, maxLength: 1024 }),
          },
          { additionalProperties: false },
        ),
        response: responses({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      await passwords.changeOwn(request.ctx, request.body);
      return reply.status(204).send(null);
    },
  );
  server.get(
    '/api/v1/auth/jwks',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['auth'],
        summary: 'Public keys that sign access tokens',
        security: [],
        response: responses({
          200: Type.Object({ keys: Type.Array(Type.Record(Type.String(), Type.Unknown())) }),
        }),
      },
    },
    async () => tokens.jwks(),
  );
}

function ownUserId(principal: Principal | null): string {
  if (principal?.type !== 'user' || !principal.userId) {
    throw new PlexicaError('PLX_PERMISSION_DENIED', { detail: 'sessions belong to users, not API keys' });
  }
  return principal.userId;
}
