import { Type } from '@sinclair/typebox';
import { IdParams, Page, Paging, pageOf, responses } from '../../http/schemas.js';
import type { Server } from '../../http/types.js';
import type { TenantsService } from './service.js';

const Settings = Type.Object(
  {
    rateLimitUser: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000 })),
    rateLimitTenant: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000_000 })),
    storageMaxFileSize: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 5 * 1024 ** 4, description: 'Largest file in bytes' }),
    ),
    storageQuotaBytes: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: Number.MAX_SAFE_INTEGER,
        description: 'Bytes the tenant may store; 0 = unlimited',
      }),
    ),
  },
  { additionalProperties: false },
);

export const TenantSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    slug: Type.String(),
    name: Type.String(),
    status: Type.Union([Type.Literal('active'), Type.Literal('suspended'), Type.Literal('deleted')]),
    settings: Settings,
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
    deletedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    purgeAfter: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { $id: 'Tenant' },
);

/** Super-admin tenant management (`core:tenant:*`, platform scope). */
export async function tenantRoutes(server: Server, deps: { tenants: TenantsService }): Promise<void> {
  const { tenants } = deps;
  server.post(
    '/api/v1/tenants',
    {
      config: { permission: 'core:tenant:create', idempotent: true },
      schema: {
        tags: ['tenants'],
        summary: 'Create a tenant (provisions its schema)',
        body: Type.Object(
          {
            // the pattern is checked again by the service, which gives the precise reason
            slug: Type.String({ maxLength: 64 }),
            name: Type.String({ minLength: 1, maxLength: 200 }),
            settings: Type.Optional(Settings),
          },
          { additionalProperties: false },
        ),
        response: responses({ 201: TenantSchema }),
      },
    },
    async (request, reply) => reply.status(201).send(await tenants.create(request.body, request.ctx)),
  );
  server.get(
    '/api/v1/tenants',
    {
      config: { permission: 'core:tenant:read' },
      schema: {
        tags: ['tenants'],
        summary: 'List tenants',
        querystring: Type.Object(
          {
            ...Paging,
            status: Type.Optional(
              Type.Union([Type.Literal('active'), Type.Literal('suspended'), Type.Literal('deleted')]),
            ),
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: Page(TenantSchema) }),
      },
    },
    async (request) => tenants.list({ ...request.query, ...pageOf(request.query) }),
  );
  server.get(
    '/api/v1/tenants/:id',
    {
      config: { permission: 'core:tenant:read' },
      schema: {
        tags: ['tenants'],
        summary: 'Get a tenant',
        params: IdParams,
        response: responses({ 200: TenantSchema }),
      },
    },
    async (request) => tenants.get(request.params.id),
  );
  server.patch(
    '/api/v1/tenants/:id',
    {
      config: { permission: 'core:tenant:update' },
      schema: {
        tags: ['tenants'],
        summary: 'Rename, suspend/resume, or change limits',
        description:
          "Recorded in the tenant's audit log. Suspending revokes every session of the tenant's users " +
          '(their tokens stay invalid after a resume: users log in again); API keys are kept and refused ' +
          'while the tenant is suspended.',
        params: IdParams,
        body: Type.Object(
          {
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('suspended')])),
            settings: Type.Optional(Settings),
          },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: responses({ 200: TenantSchema }),
      },
    },
    async (request) => tenants.update(request.params.id, request.body, request.ctx),
  );
  server.delete(
    '/api/v1/tenants/:id',
    {
      config: { permission: 'core:tenant:delete' },
      schema: {
        tags: ['tenants'],
        summary: 'Delete a tenant (soft; purged after the retention window)',
        params: IdParams,
        response: responses({ 200: TenantSchema }),
      },
    },
    async (request) => tenants.remove(request.params.id, request.ctx),
  );
}
