import { Type } from '@sinclair/typebox';
import { IdParams, responses } from '../../../http/schemas.js';
import type { Server } from '../../../http/types.js';
import type { PermissionRegistry } from '../../permissions/registry.js';
import type { ApiKeysService } from '../api-keys.js';
import type { IdentityProvidersService } from '../oidc.js';
import type { RolesService } from '../roles.js';

const PermissionKey = Type.String({ minLength: 5, maxLength: 200 });

const ApiKeySchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    name: Type.String(),
    prefix: Type.String(),
    permissions: Type.Array(Type.String()),
    createdBy: Type.Union([Type.String(), Type.Null()]),
    createdAt: Type.String({ format: 'date-time' }),
    expiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    lastUsedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    revokedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { $id: 'ApiKey' },
);

const RoleSchema = Type.Object(
  {
    key: Type.String(),
    name: Type.String(),
    description: Type.Union([Type.String(), Type.Null()]),
    permissions: Type.Array(Type.String()),
    builtIn: Type.Boolean(),
  },
  { $id: 'Role' },
);
const RoleKeyParams = Type.Object({ key: Type.String({ pattern: '^[a-z][a-z0-9_-]{1,39}$' }) });

const IdentityProviderSchema = Type.Object(
  {
    issuer: Type.String(),
    audience: Type.String(),
    jwksUri: Type.Union([Type.String(), Type.Null()]),
    clientId: Type.Union([Type.String(), Type.Null()]),
    hasClientSecret: Type.Boolean(),
    emailClaim: Type.String(),
    rolesClaim: Type.String(),
    roleMapping: Type.Record(Type.String(), Type.String()),
    defaultRoles: Type.Array(Type.String()),
  },
  { $id: 'IdentityProvider' },
);

/** API keys, roles, permission keys and the tenant's OIDC provider. */
export async function accessRoutes(
  server: Server,
  deps: {
    apiKeys: ApiKeysService;
    roles: RolesService;
    providers: IdentityProvidersService;
    registry: PermissionRegistry;
  },
): Promise<void> {
  const { apiKeys, roles, providers, registry } = deps;

  server.post(
    '/api/v1/api-keys',
    {
      config: { permission: 'core:api-key:create' },
      schema: {
        tags: ['api-keys'],
        summary: 'Create an API key; the secret is in this response only',
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 200 }),
            permissions: Type.Array(PermissionKey, { minItems: 1, maxItems: 200 }),
            expiresAt: Type.Optional(Type.String({ format: 'date-time' })),
          },
          { additionalProperties: false },
        ),
        response: responses({ 201: Type.Object({ key: ApiKeySchema, secret: Type.String() }) }),
      },
    },
    async (request, reply) => reply.status(201).send(await apiKeys.create(request.ctx, request.body)),
  );
  server.get(
    '/api/v1/api-keys',
    {
      config: { permission: 'core:api-key:read' },
      schema: {
        tags: ['api-keys'],
        summary: 'List API keys',
        response: responses({ 200: Type.Array(ApiKeySchema) }),
      },
    },
    async (request) => apiKeys.list(request.ctx),
  );
  server.get(
    '/api/v1/api-keys/:id',
    {
      config: { permission: 'core:api-key:read' },
      schema: {
        tags: ['api-keys'],
        summary: 'Get an API key',
        params: IdParams,
        response: responses({ 200: ApiKeySchema }),
      },
    },
    async (request) => apiKeys.get(request.ctx, request.params.id),
  );
  server.delete(
    '/api/v1/api-keys/:id',
    {
      config: { permission: 'core:api-key:revoke' },
      schema: {
        tags: ['api-keys'],
        summary: 'Revoke an API key',
        params: IdParams,
        response: responses({ 200: ApiKeySchema }),
      },
    },
    async (request) => apiKeys.revoke(request.ctx, request.params.id),
  );

  server.get(
    '/api/v1/permissions',
    {
      config: { permission: 'core:permission:read' },
      schema: {
        tags: ['roles'],
        summary: 'Registered permission keys',
        response: responses({
          200: Type.Array(
            Type.Object({
              key: Type.String(),
              description: Type.String(),
              scope: Type.String(),
              member: Type.Optional(Type.Boolean()),
            }),
          ),
        }),
      },
    },
    async () => registry.list(),
  );
  server.get(
    '/api/v1/roles',
    {
      config: { permission: 'core:role:read' },
      schema: {
        tags: ['roles'],
        summary: 'Built-in and custom roles',
        response: responses({ 200: Type.Array(RoleSchema) }),
      },
    },
    async (request) => roles.list(request.ctx),
  );
  server.post(
    '/api/v1/roles',
    {
      config: { permission: 'core:role:manage', idempotent: true },
      schema: {
        tags: ['roles'],
        summary: 'Create a custom role',
        body: Type.Object(
          {
            key: Type.String({ pattern: '^[a-z][a-z0-9_-]{1,39}$' }),
            name: Type.String({ minLength: 1, maxLength: 200 }),
            description: Type.Optional(Type.String({ maxLength: 1000 })),
            permissions: Type.Array(PermissionKey, { maxItems: 500 }),
          },
          { additionalProperties: false },
        ),
        response: responses({ 201: RoleSchema }),
      },
    },
    async (request, reply) => reply.status(201).send(await roles.create(request.ctx, request.body)),
  );
  server.patch(
    '/api/v1/roles/:key',
    {
      config: { permission: 'core:role:manage' },
      schema: {
        tags: ['roles'],
        summary: 'Change a custom role',
        params: RoleKeyParams,
        body: Type.Object(
          {
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            description: Type.Optional(Type.Union([Type.String({ maxLength: 1000 }), Type.Null()])),
            permissions: Type.Optional(Type.Array(PermissionKey, { maxItems: 500 })),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: responses({ 200: RoleSchema }),
      },
    },
    async (request) => roles.update(request.ctx, request.params.key, request.body),
  );
  server.delete(
    '/api/v1/roles/:key',
    {
      config: { permission: 'core:role:manage' },
      schema: {
        tags: ['roles'],
        summary: 'Delete a custom role',
        params: RoleKeyParams,
        response: responses({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      await roles.remove(request.ctx, request.params.key);
      return reply.status(204).send(null);
    },
  );

  server.get(
    '/api/v1/identity-provider',
    {
      config: { permission: 'core:identity-provider:manage' },
      schema: {
        tags: ['identity-provider'],
        summary: "The tenant's OIDC provider",
        response: responses({ 200: IdentityProviderSchema }),
      },
    },
    async (request) => providers.get(request.ctx),
  );
  server.put(
    '/api/v1/identity-provider',
    {
      config: { permission: 'core:identity-provider:manage' },
      schema: {
        tags: ['identity-provider'],
        summary: 'Trust an OIDC issuer for this tenant (e.g. Keycloak …/realms/tenant-{slug})',
        body: Type.Object(
          {
            issuer: Type.String({ format: 'uri', maxLength: 2000 }),
            audience: Type.String({ minLength: 1, maxLength: 500 }),
            jwksUri: Type.Optional(Type.String({ format: 'uri', maxLength: 2000 })),
            clientId: Type.Optional(Type.String({ maxLength: 500 })),
            clientSecret: Type.Optional(Type.String({ maxLength: 4000 })),
            emailClaim: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            rolesClaim: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            roleMapping: Type.Optional(
              Type.Record(Type.String({ maxLength: 200 }), Type.String({ maxLength: 64 })),
            ),
            defaultRoles: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 50 })),
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: IdentityProviderSchema }),
      },
    },
    async (request) => providers.put(request.ctx, request.body),
  );
  server.delete(
    '/api/v1/identity-provider',
    {
      config: { permission: 'core:identity-provider:manage' },
      schema: {
        tags: ['identity-provider'],
        summary: 'Stop trusting the OIDC provider',
        response: responses({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      await providers.remove(request.ctx);
      return reply.status(204).send(null);
    },
  );
}
