import { Type } from '@sinclair/typebox';
import { IdParams, Page, Paging, pageOf, responses } from '../../http/schemas.js';
import type { Server } from '../../http/types.js';
import type { TenantsService } from './service.js';

/** Each setting: its schema, bounds and meaning; absent = the platform's default. */
const SETTING_FIELDS = {
  rateLimitUser: Type.Integer({ minimum: 1, maximum: 10_000_000 }),
  rateLimitTenant: Type.Integer({ minimum: 1, maximum: 100_000_000 }),
  storageMaxFileSize: Type.Integer({
    minimum: 1,
    maximum: 5 * 1024 ** 4,
    description: 'Largest file in bytes',
  }),
  storageQuotaBytes: Type.Integer({
    minimum: 0,
    maximum: Number.MAX_SAFE_INTEGER,
    description: 'Bytes the tenant may store; 0 = unlimited',
  }),
  rateLimitEventsPublish: Type.Integer({
    minimum: 1,
    maximum: 100_000_000,
    description:
      'Events it may publish through the API per 15 minutes (else PLEXICA_EVENTS_PUBLISH_RATE_LIMIT)',
  }),
  rateLimitWebhooksManage: Type.Integer({
    minimum: 1,
    maximum: 100_000_000,
    description: 'Webhook management calls per 15 minutes (else PLEXICA_WEBHOOKS_MANAGE_RATE_LIMIT)',
  }),
};
type SettingName = keyof typeof SETTING_FIELDS;
const mapFields = <T>(make: (schema: (typeof SETTING_FIELDS)[SettingName]) => T) =>
  Object.fromEntries(Object.entries(SETTING_FIELDS).map(([k, v]) => [k, make(v)])) as Record<SettingName, T>;

const Settings = Type.Object(
  mapFields((schema) => Type.Optional(schema)),
  { additionalProperties: false },
);
/** In a PATCH, `null` takes an override away (the platform's default applies again). */
const SettingsPatch = Type.Object(
  mapFields((schema) => Type.Optional(Type.Union([schema, Type.Null()]))),
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
          'Settings are merged into the current ones; `null` removes an override. Only a super admin ' +
          "changes them: a tenant's admins cannot raise their own limits. " +
          "Recorded in the tenant's audit log. Suspending revokes every session of the tenant's users " +
          '(their tokens stay invalid after a resume: users log in again); API keys are kept and refused ' +
          'while the tenant is suspended.',
        params: IdParams,
        body: Type.Object(
          {
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
            status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('suspended')])),
            settings: Type.Optional(SettingsPatch),
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
