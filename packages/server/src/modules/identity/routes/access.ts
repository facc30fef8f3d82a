import { Type } from '@sinclair/typebox';
import { IdParams, responses } from '../../../http/schemas.js';
import type { Server } from '../../../http/types.js';
import type { PermissionRegistry } from '../../../permissions.js';
import type { ApiKeysService } from '../api-keys.js';
import { type IdentityLinksService, LINK_PERMISSION } from '../identity-links.js';
import type { IdentityProvidersService } from '../identity-providers.js';
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
    jwksUri: Type.Union([Type.String(), Type.Null()], {
      description: 'The key set URL given when saving; null = found by discovery',
    }),
    resolvedJwksUri: Type.Union([Type.String(), Type.Null()], {
      description: 'The key set URL in use: jwksUri, or what discovery found when the provider was saved',
    }),
    clientId: Type.Union([Type.String(), Type.Null()]),
    hasClientSecret: Type.Boolean(),
    emailClaim: Type.String(),
    rolesClaim: Type.String(),
    roleMapping: Type.Record(Type.String(), Type.String()),
    defaultRoles: Type.Array(Type.String()),
  },
  { $id: 'IdentityProvider' },
);

const IdentityLinkSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    userId: Type.String({ format: 'uuid' }),
    issuer: Type.String(),
    subject: Type.String(),
    origin: Type.Union([Type.Literal('jit'), Type.Literal('link'), Type.Literal('legacy')], {
      description:
        "jit: the identity provider created the user (its roles follow the provider); link: linked by the account or an admin (roles stay the account's); legacy: attached by email before this version, signs in only once linked again",
    }),
    linkedBy: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]),
    createdAt: Type.String({ format: 'date-time' }),
    lastLoginAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { $id: 'IdentityLink' },
);

/** API keys, roles, permission keys and the tenant's OIDC provider. */
export async function accessRoutes(
  server: Server,
  deps: {
    apiKeys: ApiKeysService;
    roles: RolesService;
    providers: IdentityProvidersService;
    links: IdentityLinksService;
    registry: PermissionRegistry;
  },
): Promise<void> {
  const { apiKeys, roles, providers, links, registry } = deps;

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
        description:
          'The issuer (and jwksUri, when given) must be https on a public address unless its host is in PLEXICA_OUTBOUND_ALLOW_HOSTS. Without jwksUri, OpenID Connect discovery runs now and its jwks_uri is stored; tokens never trigger discovery. Several tenants may trust one issuer, each with its own audience (client id): the (issuer, audience) pair is unique.',
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

  // A sign-in through the IdP never attaches itself to an existing account by email (issue 9
  // item 1): these routes make that link explicitly, by the account itself or by an admin.
  server.get(
    '/api/v1/identity-provider/links',
    {
      config: { auth: 'authenticated' },
      schema: {
        tags: ['identity-provider'],
        summary: 'Links between accounts and identity provider subjects',
        description: `All of the tenant's links with ${LINK_PERMISSION}; otherwise the caller's own.`,
        querystring: Type.Object(
          { userId: Type.Optional(Type.String({ format: 'uuid' })) },
          { additionalProperties: false },
        ),
        response: responses({ 200: Type.Array(IdentityLinkSchema) }),
      },
    },
    async (request) => links.list(request.ctx, request.query),
  );
  server.post(
    '/api/v1/identity-provider/links',
    {
      config: { permission: LINK_PERMISSION },
      schema: {
        tags: ['identity-provider'],
        summary: "Link a user's account to a subject of the tenant's identity provider",
        description:
          'Whoever holds the subject at the identity provider then signs in as this user, who keeps their own roles. The caller must hold every permission the user has.',
        body: Type.Object(
          {
            userId: Type.String({ format: 'uuid' }),
            subject: Type.String({ minLength: 1, maxLength: 255, description: "The IdP's sub claim" }),
          },
          { additionalProperties: false },
        ),
        response: responses({ 201: IdentityLinkSchema }),
      },
    },
    async (request, reply) => reply.status(201).send(await links.link(request.ctx, request.body)),
  );
  server.post(
    '/api/v1/identity-provider/links/me',
    {
      config: { auth: 'authenticated' },
      schema: {
        tags: ['identity-provider'],
        summary:
          "Link the caller's own account to the subject of a token from the tenant's identity provider",
        description:
          "The token (an ID or access token of the tenant's provider, with this tenant's audience and an exp) proves the caller holds the subject.",
        body: Type.Object(
          { token: Type.String({ minLength: 10, maxLength: 16_384 }) },
          { additionalProperties: false },
        ),
        response: responses({ 201: IdentityLinkSchema }),
      },
    },
    async (request, reply) => reply.status(201).send(await links.linkSelf(request.ctx, request.body.token)),
  );
  server.delete(
    '/api/v1/identity-provider/links/:id',
    {
      config: { auth: 'authenticated' },
      schema: {
        tags: ['identity-provider'],
        summary: 'Remove a link (own links by their user; others need core:identity-link:manage)',
        params: IdParams,
        response: responses({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      await links.unlink(request.ctx, request.params.id);
      return reply.status(204).send(null);
    },
  );
}
