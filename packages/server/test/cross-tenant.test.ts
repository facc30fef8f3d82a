import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../src/infra/errors.js';
import { createTestApp, DATABASES, type TestApp } from './harness.js';

type Response = Awaited<ReturnType<TestApp['request']>>;

/** What every error response of every route must be: a problem document with a catalogue code. */
function expectProblem(res: Response, context: string): void {
  expect(String(res.headers['content-type']), context).toContain('application/problem+json');
  expect(Object.hasOwn(ERROR_CODES, res.body?.code), `${context}: code ${res.body?.code}`).toBe(true);
  expect(res.body.status, context).toBe(res.status);
  expect(res.status, `${context}: ${JSON.stringify(res.body)}`).toBeLessThan(500);
}

/** A documented operation, with the names of its path and query parameters. */
interface Operation {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  path: string;
  pathParams: string[];
  queryParams: string[];
}

async function documentedOperations(t: TestApp): Promise<Operation[]> {
  const doc = await t.request({ method: 'GET', url: '/api/v1/openapi.json' });
  type Op = { parameters?: { in: string; name: string }[] };
  return Object.entries(doc.body.paths as Record<string, Record<string, Op>>).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({
      method: method.toUpperCase() as Operation['method'],
      path,
      pathParams: (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name),
      queryParams: (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name),
    })),
  );
}

// any well-formed value: these requests are refused before a handler looks anything up
const FILLER = '00000000-0000-4000-8000-000000000000';
const urlOf = (op: Operation, values: Record<string, string> = {}) =>
  op.path.replace(/\{(\w+)\}/g, (_match, name: string) => values[name] ?? FILLER);
/** Query parameters a route checks itself, with a more precise error than PLX_VALIDATION. */
const OWN_QUERY_CHECK: Record<string, string> = {
  'POST /api/v1/storage/upload path': 'PLX_STORAGE_PATH_INVALID',
};
/**
 * `{path}` is a wildcard (the rest of the URL), which the router does not bound by
 * maxParamLength: a 200-character path reaches its route, which answers as for any
 * file that is not there (or, for a signed URL without its query, names what is missing).
 */
const LONG_WILDCARD: Record<string, { status: number; code: string }> = {
  'GET /api/v1/storage/download/{path}': { status: 404, code: 'PLX_STORAGE_FILE_NOT_FOUND' },
  'GET /api/v1/storage/info/{path}': { status: 404, code: 'PLX_STORAGE_FILE_NOT_FOUND' },
  'GET /api/v1/storage/signed-url/{path}': { status: 404, code: 'PLX_STORAGE_FILE_NOT_FOUND' },
  'DELETE /api/v1/storage/{path}': { status: 404, code: 'PLX_STORAGE_FILE_NOT_FOUND' },
  'GET /api/v1/storage/signed/{path}': { status: 400, code: 'PLX_VALIDATION' },
  'PUT /api/v1/storage/signed/{path}': { status: 400, code: 'PLX_VALIDATION' },
};

const TENANT_PERMISSIONS = [
  'core:permission:read',
  'core:user:read',
  'core:user:create',
  'core:user:update',
  'core:user:delete',
  'core:session:manage',
  'core:role:read',
  'core:role:manage',
  'core:api-key:read',
  'core:api-key:create',
  'core:api-key:revoke',
  'core:api-key:manage',
  'core:identity-provider:manage',
  'core:identity-link:manage',
  'core:audit:read',
  'storage:file:read',
  'storage:file:write',
  'storage:file:delete',
  'jobs:job:read',
  'jobs:job:create',
  'jobs:job:cancel',
  'jobs:job:retry',
  'jobs:schedule:manage',
  'search:document:read',
  'search:document:write',
  'search:type:manage',
  'search:index:reindex',
  'events:app:read',
  'events:app:manage',
  'events:event:publish',
  'events:event:read',
  'events:dead-letter:read',
  'events:dead-letter:redrive',
  'webhooks:endpoint:read',
  'webhooks:endpoint:manage',
];

/** Routes with no tenant data behind them (or only the caller's own identity). */
const NOT_TENANT_DATA = new Set([
  'POST /api/v1/auth/login',
  'POST /api/v1/auth/refresh',
  'POST /api/v1/auth/logout',
  'GET /api/v1/auth/jwks',
  'GET /api/v1/auth/me',
  // the caller's own password, whoever the caller is
  'POST /api/v1/auth/password',
  'GET /api/v1/permissions',
  // a stream, not a request: its cross-tenant refusals (channels, resume ids) are in
  // modules/realtime/realtime.test.ts, over a real socket
  'GET /api/v1/events/stream',
]);

type Attempt = {
  /** The route as in the OpenAPI document, e.g. `GET /api/v1/users/{id}`. */
  route: string;
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  url: () => string;
  body?: () => unknown;
  tenantHeader?: boolean;
  status: number;
  code?: string;
  /** Status for an API key when it differs (sessions belong to users). */
  apiKey?: { status: number; code: string };
  /** For 200 lists: nothing of tenant A may appear in the body. */
  leaks?: () => string[];
};

for (const kind of DATABASES) {
  describe(`tenant B cannot reach tenant A through any route (${kind})`, () => {
    let t: TestApp;
    const a = {} as {
      id: string;
      slug: string;
      admin: string;
      userId: string;
      keyId: string;
      sessionId: string;
      email: string;
      linkId: string;
      jobId: string;
      scheduleId: string;
      appId: string;
      eventId: string;
      webhookId: string;
      deliveryId: string;
      deadLetterId: string;
    };
    const b = {} as { admin: string; apiKey: string; signedGet: string; signedPut: string };
    let attempts: Attempt[];

    beforeAll(async () => {
      // the webhook endpoint of A points at an allow-listed address (nothing listens there)
      t = await createTestApp(kind, { outboundAllowHosts: ['127.0.0.1:9'] });
      const tenantA = await t.createTenant('tenant-a');
      const tenantB = await t.createTenant('tenant-b');
      Object.assign(a, {
        id: tenantA.id,
        slug: tenantA.slug,
        admin: tenantA.adminToken,
        email: 'victim@a.test',
      });
      const user = await t.request({
        method: 'POST',
        url: '/api/v1/users',
        token: a.admin,
        body: { email: a.email, password: 'victim-password-1', displayName: 'Victim' },
      });
      a.userId = user.body.id;
      await t.login(a.email, 'victim-password-1', 'tenant-a');
      const sessions = await t.request({
        method: 'GET',
        url: `/api/v1/users/${a.userId}/sessions`,
        token: a.admin,
      });
      a.sessionId = sessions.body[0].id;
      const key = await t.request({
        method: 'POST',
        url: '/api/v1/api-keys',
        token: a.admin,
        body: { name: 'a-key', permissions: ['core:user:read'] },
      });
      a.keyId = key.body.key.id;
      await t.request({
        method: 'POST',
        url: '/api/v1/roles',
        token: a.admin,
        body: { key: 'auditor', name: 'Auditor', permissions: ['core:audit:read'] },
      });
      // written directly: saving through the API runs discovery, and idp.example does not exist
      await t.app.database.db
        .insertInto('core.identity_providers')
        .values({
          tenant_id: a.id,
          issuer: 'https://idp.example/realms/tenant-a',
          audience: 'plexica',
          resolved_jwks_uri: 'https://idp.example/realms/tenant-a/certs',
          email_claim: 'email',
          roles_claim: 'realm_access.roles',
          role_mapping: '{}',
          default_roles: '["member"]',
        })
        .execute();
      const link = await t.request({
        method: 'POST',
        url: '/api/v1/identity-provider/links',
        token: a.admin,
        body: { userId: a.userId, subject: 'a-subject' },
      });
      expect(link.status).toBe(201);
      a.linkId = link.body.id;
      b.admin = tenantB.adminToken;
      const bKey = await t.request({
        method: 'POST',
        url: '/api/v1/api-keys',
        token: b.admin,
        body: { name: 'b-key', permissions: TENANT_PERMISSIONS },
      });
      b.apiKey = bKey.body.secret;

      // a file in each tenant; B's own signed URLs, to be replayed against A
      const upload = (token: string, path: string, content: string) =>
        t.app.server.inject({
          method: 'POST',
          url: `/api/v1/storage/upload?path=${path}`,
          headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
          payload: content,
        });
      expect((await upload(a.admin, 'private/a.txt', 'secret of tenant A')).statusCode).toBe(201);
      expect((await upload(b.admin, 'private/b.txt', 'B')).statusCode).toBe(201);
      const sign = async (method: string) => {
        const res = await t.request({
          method: 'GET',
          url: `/api/v1/storage/signed-url/private/b.txt?method=${method}`,
          token: b.admin,
        });
        const url = new URL(res.body.url, 'http://plexica.test'); // a path unless a public URL is set
        url.searchParams.set('tenant', a.id);
        return url.pathname + url.search;
      };
      // a job of A's, held far in the future (no workers run in this file)
      t.app.services.jobs.define({ type: 'test.noop', handler: async () => null });
      const job = await t.request({
        method: 'POST',
        url: '/api/v1/jobs',
        token: a.admin,
        body: { type: 'test.noop', runAt: '2099-01-01T00:00:00Z' },
      });
      expect(job.status).toBe(201);
      a.jobId = job.body.id;
      const schedule = await t.request({
        method: 'POST',
        url: '/api/v1/jobs/schedule',
        token: a.admin,
        body: { type: 'test.noop', cron: '@yearly' },
      });
      expect(schedule.status).toBe(201);
      a.scheduleId = schedule.body.id;
      const app = await t.request({
        method: 'POST',
        url: '/api/v1/apps',
        token: a.admin,
        body: { name: 'A app' },
      });
      expect(app.status).toBe(201);
      a.appId = app.body.id;
      const event = await t.request({
        method: 'POST',
        url: `/api/v1/apps/${a.appId}/events`,
        token: a.admin,
        body: { category: 'crm', type: 'deal.created', data: { secret: 'a-event-data' } },
      });
      expect(event.status).toBe(201);
      a.eventId = event.body.id;
      const hook = await t.request({
        method: 'POST',
        url: '/api/v1/webhooks',
        token: a.admin,
        body: { url: 'http://127.0.0.1:9/hook', eventTypes: ['crm.*'] },
      });
      expect(hook.status).toBe(201);
      a.webhookId = hook.body.id;
      // a delivery row of A's endpoint (the dispatcher runs on the worker role, not started here)
      const delivery = await t.app.database.db
        .insertInto('core.webhook_deliveries')
        .values({
          endpoint_id: a.webhookId,
          tenant_id: a.id,
          event_id: a.eventId,
          event_type: 'crm.deal.created',
          payload: JSON.stringify({}),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      a.deliveryId = delivery.id;
      // a dead letter of A's event (no consumer runs in this file to make one)
      const deadLetter = await t.app.database.db
        .insertInto('core.event_dead_letters')
        .values({
          group_name: 'a.projector',
          topic: 'tenant-a.crm.deal.created',
          position: '1',
          event_id: a.eventId,
          tenant_id: a.id,
          key: null,
          error: 'a-dead-letter-error',
          attempts: 5,
          payload: JSON.stringify({
            id: a.eventId,
            type: 'crm.deal.created',
            data: { secret: 'a-event-data' },
          }),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      a.deadLetterId = deadLetter.id;
      b.signedGet = await sign('GET');
      b.signedPut = await sign('PUT');
      // a search type and document of A's; B has the same type (its searches answer 200) and A has one more
      for (const [token, types] of [
        [a.admin, ['crm:contact', 'alpha:only']],
        [b.admin, ['crm:contact']],
      ] as const) {
        for (const type of types)
          expect(
            (await t.request({ method: 'PUT', url: `/api/v1/search/types/${type}`, token, body: {} })).status,
          ).toBe(200);
      }
      const indexed = await t.request({
        method: 'POST',
        url: '/api/v1/search/index',
        token: a.admin,
        body: { type: 'crm:contact', id: 'a-secret-doc', title: 'Alpha secret contact' },
      });
      expect(indexed.status).toBe(200);

      const aIds = () => [a.id, a.userId, a.keyId, a.sessionId, a.email, 'auditor', 'tenant-a'];
      const appNotFound = { status: 404, code: 'PLX_APP_NOT_FOUND' };
      const hookNotFound = { status: 404, code: 'PLX_WEBHOOK_NOT_FOUND' };
      const eventAttempts: Attempt[] = [
        {
          route: 'GET /api/v1/apps',
          method: 'GET',
          url: () => '/api/v1/apps',
          status: 200,
          leaks: () => [a.appId],
        },
        {
          route: 'POST /api/v1/apps',
          method: 'POST',
          url: () => '/api/v1/apps',
          body: () => ({ name: 'planted' }),
          tenantHeader: true,
          status: 403,
          code: 'PLX_TENANT_HEADER_FORBIDDEN',
        },
        {
          route: 'GET /api/v1/apps/{appId}',
          method: 'GET',
          url: () => `/api/v1/apps/${a.appId}`,
          ...appNotFound,
        },
        {
          route: 'PATCH /api/v1/apps/{appId}',
          method: 'PATCH',
          url: () => `/api/v1/apps/${a.appId}`,
          body: () => ({ name: 'taken over' }),
          ...appNotFound,
        },
        {
          route: 'DELETE /api/v1/apps/{appId}',
          method: 'DELETE',
          url: () => `/api/v1/apps/${a.appId}`,
          ...appNotFound,
        },
        {
          route: 'POST /api/v1/apps/{appId}/api-keys',
          method: 'POST',
          url: () => `/api/v1/apps/${a.appId}/api-keys`,
          body: () => ({ name: 'planted', permissions: [] }),
          ...appNotFound,
        },
        {
          route: 'GET /api/v1/apps/{appId}/api-keys',
          method: 'GET',
          url: () => `/api/v1/apps/${a.appId}/api-keys`,
          ...appNotFound,
        },
        {
          route: 'POST /api/v1/apps/{appId}/events',
          method: 'POST',
          url: () => `/api/v1/apps/${a.appId}/events`,
          body: () => ({ category: 'crm', type: 'deal.planted' }),
          ...appNotFound,
        },
        {
          route: 'GET /api/v1/apps/{appId}/events',
          method: 'GET',
          url: () => `/api/v1/apps/${a.appId}/events`,
          ...appNotFound,
        },
        {
          route: 'GET /api/v1/events',
          method: 'GET',
          url: () => '/api/v1/events',
          status: 200,
          leaks: () => [a.eventId, a.appId, 'a-event-data'],
        },
        {
          route: 'GET /api/v1/dead-letters',
          method: 'GET',
          url: () => '/api/v1/dead-letters',
          status: 200,
          leaks: () => [a.deadLetterId, a.eventId, 'a-event-data', 'a-dead-letter-error'],
        },
        {
          route: 'GET /api/v1/dead-letters/{id}',
          method: 'GET',
          url: () => `/api/v1/dead-letters/${a.deadLetterId}`,
          status: 404,
          code: 'PLX_EVENT_DEAD_LETTER_NOT_FOUND',
        },
        {
          route: 'POST /api/v1/dead-letters/{id}/redrive',
          method: 'POST',
          url: () => `/api/v1/dead-letters/${a.deadLetterId}/redrive`,
          status: 404,
          code: 'PLX_EVENT_DEAD_LETTER_NOT_FOUND',
        },
        {
          route: 'POST /api/v1/dead-letters/redrive',
          method: 'POST',
          url: () => '/api/v1/dead-letters/redrive',
          body: () => ({ ids: [a.deadLetterId] }),
          status: 404,
          code: 'PLX_EVENT_DEAD_LETTER_NOT_FOUND',
        },
        // consumer groups serve every tenant: a platform route, never a tenant's
        {
          route: 'GET /api/v1/event-groups',
          method: 'GET',
          url: () => '/api/v1/event-groups',
          status: 403,
          code: 'PLX_PERMISSION_DENIED',
        },
        {
          route: 'POST /api/v1/event-groups/{group}/replay',
          method: 'POST',
          url: () => '/api/v1/event-groups/a.projector/replay',
          body: () => ({ time: '2020-01-01T00:00:00Z' }),
          status: 403,
          code: 'PLX_PERMISSION_DENIED',
        },
        {
          route: 'POST /api/v1/apps/{appId}/webhooks',
          method: 'POST',
          url: () => `/api/v1/apps/${a.appId}/webhooks`,
          body: () => ({ url: 'http://127.0.0.1:9/planted', eventTypes: ['crm.*'] }),
          ...appNotFound,
        },
        {
          route: 'GET /api/v1/apps/{appId}/webhooks',
          method: 'GET',
          url: () => `/api/v1/apps/${a.appId}/webhooks`,
          ...appNotFound,
        },
        {
          route: 'POST /api/v1/webhooks',
          method: 'POST',
          url: () => '/api/v1/webhooks',
          body: () => ({ url: 'http://127.0.0.1:9/planted', eventTypes: ['crm.*'] }),
          tenantHeader: true,
          status: 403,
          code: 'PLX_TENANT_HEADER_FORBIDDEN',
        },
        {
          route: 'GET /api/v1/webhooks',
          method: 'GET',
          url: () => '/api/v1/webhooks',
          status: 200,
          leaks: () => [a.webhookId],
        },
        {
          route: 'GET /api/v1/webhooks/{id}',
          method: 'GET',
          url: () => `/api/v1/webhooks/${a.webhookId}`,
          ...hookNotFound,
        },
        {
          route: 'PATCH /api/v1/webhooks/{id}',
          method: 'PATCH',
          url: () => `/api/v1/webhooks/${a.webhookId}`,
          body: () => ({ status: 'disabled' }),
          ...hookNotFound,
        },
        {
          route: 'DELETE /api/v1/webhooks/{id}',
          method: 'DELETE',
          url: () => `/api/v1/webhooks/${a.webhookId}`,
          ...hookNotFound,
        },
        {
          route: 'POST /api/v1/webhooks/{id}/rotate-secret',
          method: 'POST',
          url: () => `/api/v1/webhooks/${a.webhookId}/rotate-secret`,
          body: () => ({}),
          ...hookNotFound,
        },
        {
          route: 'GET /api/v1/webhooks/{id}/deliveries',
          method: 'GET',
          url: () => `/api/v1/webhooks/${a.webhookId}/deliveries`,
          ...hookNotFound,
        },
        {
          route: 'POST /api/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver',
          method: 'POST',
          url: () => `/api/v1/webhooks/${a.webhookId}/deliveries/${a.deliveryId}/redeliver`,
          ...hookNotFound,
        },
        {
          route: 'POST /api/v1/webhooks/{id}/recover',
          method: 'POST',
          url: () => `/api/v1/webhooks/${a.webhookId}/recover`,
          body: () => ({ since: '2026-01-01T00:00:00Z' }),
          ...hookNotFound,
        },
      ];
      attempts = [
        ...eventAttempts,
        { route: 'GET /api/v1/users', method: 'GET', url: () => '/api/v1/users', status: 200, leaks: aIds },
        {
          route: 'POST /api/v1/users',
          method: 'POST',
          url: () => '/api/v1/users',
          body: () => ({ email: 'planted@a.test', password: 'planted-password-1' }),
          tenantHeader: true,
          status: 403,
          code: 'PLX_TENANT_HEADER_FORBIDDEN',
        },
        {
          route: 'GET /api/v1/users/{id}',
          method: 'GET',
          url: () => `/api/v1/users/${a.userId}`,
          status: 404,
          code: 'PLX_USER_NOT_FOUND',
        },
        {
          route: 'PATCH /api/v1/users/{id}',
          method: 'PATCH',
          url: () => `/api/v1/users/${a.userId}`,
          body: () => ({ roles: ['tenant_admin'] }),
          status: 404,
          code: 'PLX_USER_NOT_FOUND',
        },
        {
          route: 'DELETE /api/v1/users/{id}',
          method: 'DELETE',
          url: () => `/api/v1/users/${a.userId}`,
          status: 404,
          code: 'PLX_USER_NOT_FOUND',
        },
        {
          route: 'GET /api/v1/users/{id}/sessions',
          method: 'GET',
          url: () => `/api/v1/users/${a.userId}/sessions`,
          status: 404,
          code: 'PLX_USER_NOT_FOUND',
        },
        {
          route: 'DELETE /api/v1/users/{id}/sessions/{sessionId}',
          method: 'DELETE',
          url: () => `/api/v1/users/${a.userId}/sessions/${a.sessionId}`,
          status: 404,
          code: 'PLX_USER_NOT_FOUND',
        },
        {
          route: 'GET /api/v1/api-keys',
          method: 'GET',
          url: () => '/api/v1/api-keys',
          status: 200,
          leaks: aIds,
        },
        {
          route: 'POST /api/v1/events/stream/ticket',
          method: 'POST',
          url: () => '/api/v1/events/stream/ticket',
          tenantHeader: true,
          status: 403,
          code: 'PLX_TENANT_HEADER_FORBIDDEN',
        },
        {
          route: 'POST /api/v1/api-keys',
          method: 'POST',
          url: () => '/api/v1/api-keys',
          body: () => ({ name: 'planted', permissions: ['core:user:read'] }),
          tenantHeader: true,
          status: 403,
          code: 'PLX_TENANT_HEADER_FORBIDDEN',
        },
        {
          route: 'GET /api/v1/api-keys/{id}',
          method: 'GET',
          url: () => `/api/v1/api-keys/${a.keyId}`,
          status: 404,
          code: 'PLX_API_KEY_NOT_FOUND',
        },
        {
          route: 'DELETE /api/v1/api-keys/{id}',
          method: 'DELETE',
          url: () => `/api/v1/api-keys/${a.keyId}`,
          status: 404,
          code: 'PLX_API_KEY_NOT_FOUND',
        },
        {
          route: 'GET /api/v1/roles',
          method: 'GET',
          url: () => '/api/v1/roles',
          status: 200,
          leaks: () => ['auditor'],
        },
        {
          route: 'POST /api/v1/roles',
          method: 'POST',
          url: () => '/api/v1/roles',
          body: () => ({ key: 'planted', name: 'x', permissions: [] }),
          tenantHeader: true,
          status: 403,
          code: 'PLX_TENANT_HEADER_FORBIDDEN',
        },
        {
          route: 'PATCH /api/v1/roles/{key}',
          method: 'PATCH',
          url: () => '/api/v1/roles/auditor',
          body: () => ({ permissions: ['core:user:delete'] }),
          status: 404,
          code: 'PLX_ROLE_NOT_FOUND',
        },
        {
          route: 'DELETE /api/v1/roles/{key}',
          method: 'DELETE',
          url: () => '/api/v1/roles/auditor',
          status: 404,
          code: 'PLX_ROLE_NOT_FOUND',
        },
        {
          route: 'GET /api/v1/identity-provider',
          method: 'GET',
          url: () => '/api/v1/identity-provider',
          status: 404,
          code: 'PLX_OIDC_NOT_CONFIGURED',
        },
        {
          route: 'PUT /api/v1/identity-provider',
          method: 'PUT',
          url: () => '/api/v1/identity-provider',
          body: () => ({ issuer: 'https://idp.example/realms/tenant-a', audience: 'plexica' }),
          status: 409,
          code: 'PLX_OIDC_ISSUER_TAKEN',
        },
        {
          route: 'DELETE /api/v1/identity-provider',
          method: 'DELETE',
          url: () => '/api/v1/identity-provider',
          status: 404,
          code: 'PLX_OIDC_NOT_CONFIGURED',
        },
        {
          route: 'GET /api/v1/identity-provider/links',
          method: 'GET',
          url: () => `/api/v1/identity-provider/links?userId=${a.userId}`,
          status: 200,
          leaks: () => [a.linkId, 'a-subject', a.userId],
        },
        {
          route: 'POST /api/v1/identity-provider/links',
          method: 'POST',
          url: () => '/api/v1/identity-provider/links',
          body: () => ({ userId: a.userId, subject: 'planted' }),
          status: 404,
          code: 'PLX_USER_NOT_FOUND',
        },
        {
          route: 'POST /api/v1/identity-provider/links/me',
          method: 'POST',
          url: () => '/api/v1/identity-provider/links/me',
          // a token naming A's issuer: B has no provider, so nothing is verified against A's
          body: () => ({
            token: `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from(
              '{"iss":"https://idp.example/realms/tenant-a","aud":"plexica","sub":"planted"}',
            ).toString('base64url')}.c2ln`,
          }),
          status: 404,
          code: 'PLX_OIDC_NOT_CONFIGURED',
          apiKey: { status: 403, code: 'PLX_PERMISSION_DENIED' },
        },
        {
          route: 'DELETE /api/v1/identity-provider/links/{id}',
          method: 'DELETE',
          url: () => `/api/v1/identity-provider/links/${a.linkId}`,
          status: 404,
          code: 'PLX_OIDC_IDENTITY_NOT_FOUND',
        },
        {
          route: 'GET /api/v1/audit-events',
          method: 'GET',
          url: () => '/api/v1/audit-events?limit=100',
          status: 200,
          leaks: aIds,
        },
        {
          route: 'GET /api/v1/auth/sessions',
          method: 'GET',
          url: () => '/api/v1/auth/sessions',
          status: 200,
          leaks: () => [a.sessionId],
          apiKey: { status: 403, code: 'PLX_PERMISSION_DENIED' },
        },
        {
          route: 'DELETE /api/v1/auth/sessions/{id}',
          method: 'DELETE',
          url: () => `/api/v1/auth/sessions/${a.sessionId}`,
          status: 404,
          code: 'PLX_SESSION_NOT_FOUND',
          apiKey: { status: 403, code: 'PLX_PERMISSION_DENIED' },
        },
        {
          route: 'GET /api/v1/tenants',
          method: 'GET',
          url: () => '/api/v1/tenants',
          status: 403,
          code: 'PLX_PERMISSION_DENIED',
        },
        {
          route: 'POST /api/v1/tenants',
          method: 'POST',
          url: () => '/api/v1/tenants',
          body: () => ({ slug: 'planted', name: 'x' }),
          status: 403,
          code: 'PLX_PERMISSION_DENIED',
        },
        {
          route: 'GET /api/v1/tenants/{id}',
          method: 'GET',
          url: () => `/api/v1/tenants/${a.id}`,
          status: 403,
          code: 'PLX_PERMISSION_DENIED',
        },
        {
          route: 'PATCH /api/v1/tenants/{id}',
          method: 'PATCH',
          url: () => `/api/v1/tenants/${a.id}`,
          body: () => ({ status: 'suspended' }),
          status: 403,
          code: 'PLX_PERMISSION_DENIED',
        },
        {
          route: 'DELETE /api/v1/tenants/{id}',
          method: 'DELETE',
          url: () => `/api/v1/tenants/${a.id}`,
          status: 403,
          code: 'PLX_PERMISSION_DENIED',
        },
        {
          route: 'POST /api/v1/storage/upload',
          method: 'POST',
          url: () => '/api/v1/storage/upload?path=private/a.txt',
          body: () => 'planted',
          tenantHeader: true,
          status: 403,
          code: 'PLX_TENANT_HEADER_FORBIDDEN',
        },
        ...(
          [
            ['GET', 'download'],
            ['GET', 'info'],
            ['GET', 'signed-url'],
            ['DELETE', ''],
          ] as const
        ).map(([method, action]) => ({
          route: `${method} /api/v1/storage/${action ? `${action}/` : ''}{path}`,
          method,
          url: () => `/api/v1/storage/${action ? `${action}/` : ''}private/a.txt`,
          status: 404,
          code: 'PLX_STORAGE_FILE_NOT_FOUND',
        })),
        ...(['copy', 'move'] as const).map((action) => ({
          route: `POST /api/v1/storage/${action}`,
          method: 'POST' as const,
          url: () => `/api/v1/storage/${action}`,
          body: () => ({ from: 'private/a.txt', to: 'private/stolen.txt' }),
          status: 404,
          code: 'PLX_STORAGE_FILE_NOT_FOUND',
        })),
        {
          route: 'GET /api/v1/storage/list',
          method: 'GET',
          url: () => '/api/v1/storage/list?prefix=private/',
          status: 200,
          leaks: () => ['private/a.txt'],
        },
        {
          route: 'GET /api/v1/storage/usage',
          method: 'GET',
          url: () => '/api/v1/storage/usage',
          status: 200,
          leaks: () => [a.id],
        },
        ...(['GET', 'PUT'] as const).map((method) => ({
          route: `${method} /api/v1/storage/signed/{path}`,
          method,
          url: () => (method === 'GET' ? b.signedGet : b.signedPut),
          ...(method === 'PUT' && { body: () => 'planted' }),
          status: 403,
          code: 'PLX_STORAGE_SIGNATURE_INVALID',
        })),
        ...(['/api/v1/jobs', '/api/v1/jobs/bulk', '/api/v1/jobs/schedule'] as const).map((url) => ({
          route: `POST ${url}`,
          method: 'POST' as const,
          url: () => url,
          body: () =>
            url === '/api/v1/jobs'
              ? { type: 'test.noop' }
              : url === '/api/v1/jobs/bulk'
                ? { jobs: [{ type: 'test.noop' }] }
                : { type: 'test.noop', cron: '* * * * *' },
          tenantHeader: true,
          status: 403,
          code: 'PLX_TENANT_HEADER_FORBIDDEN',
        })),
        {
          route: 'GET /api/v1/jobs',
          method: 'GET',
          url: () => '/api/v1/jobs?limit=100',
          status: 200,
          leaks: () => [a.jobId],
        },
        {
          route: 'GET /api/v1/job-schedules',
          method: 'GET',
          url: () => '/api/v1/job-schedules',
          status: 200,
          leaks: () => [a.scheduleId],
        },
        ...(['PATCH', 'DELETE'] as const).map((method) => ({
          route: `${method} /api/v1/job-schedules/{id}`,
          method,
          url: () => `/api/v1/job-schedules/${a.scheduleId}`,
          ...(method === 'PATCH' && { body: () => ({ paused: true }) }),
          status: 404,
          code: 'PLX_JOB_SCHEDULE_NOT_FOUND',
        })),
        {
          route: 'GET /api/v1/jobs/types',
          method: 'GET',
          url: () => '/api/v1/jobs/types',
          status: 200,
          leaks: () => [a.jobId],
        },
        ...(
          [
            ['GET', '/api/v1/jobs/{id}', ''],
            ['GET', '/api/v1/jobs/{id}/status', '/status'],
            ['DELETE', '/api/v1/jobs/{id}', ''],
            ['POST', '/api/v1/jobs/{id}/retry', '/retry'],
          ] as const
        ).map(([method, route, suffix]) => ({
          route: `${method} ${route}`,
          method,
          url: () => `/api/v1/jobs/${a.jobId}${suffix}`,
          status: 404,
          code: 'PLX_JOB_NOT_FOUND',
        })),
        ...(
          [
            ['POST', '/api/v1/search/index', { type: 'crm:contact', id: 'planted', title: 'Planted' }],
            [
              'POST',
              '/api/v1/search/index/bulk',
              { documents: [{ type: 'crm:contact', id: 'planted', title: 'P' }] },
            ],
            ['POST', '/api/v1/search/reindex', { type: 'crm:contact' }],
            ['PUT', '/api/v1/search/types/{type}', {}],
            ['PUT', '/api/v1/search/settings', { language: 'english' }],
          ] as const
        ).map(([method, route, body]) => ({
          route: `${method} ${route}`,
          method,
          url: () => route.replace('{type}', 'crm:contact'),
          body: () => body,
          tenantHeader: true,
          status: 403,
          code: 'PLX_TENANT_HEADER_FORBIDDEN',
        })),
        ...(['/api/v1/search', '/api/v1/search/suggest'] as const).map((url) => ({
          route: `POST ${url}`,
          method: 'POST' as const,
          url: () => url,
          body: () => ({ q: 'alpha secret' }),
          status: 200,
          leaks: () => ['a-secret-doc', 'Alpha secret'],
        })),
        {
          route: 'GET /api/v1/search/types',
          method: 'GET',
          url: () => '/api/v1/search/types',
          status: 200,
          leaks: () => ['alpha:only'],
        },
        // B's deletes act in B: A's document stays (stateOf)
        {
          route: 'DELETE /api/v1/search/{id}',
          method: 'DELETE',
          url: () => '/api/v1/search/a-secret-doc?type=crm:contact',
          status: 204,
        },
        {
          route: 'POST /api/v1/search/delete',
          method: 'POST',
          url: () => '/api/v1/search/delete',
          body: () => ({ q: 'alpha' }),
          status: 200,
        },
        ...(['GET', 'POST'] as const).map((method) => ({
          route: `${method} /api/v1/tenants/{tenantId}/users`,
          method,
          url: () => `/api/v1/tenants/${a.id}/users`,
          ...(method === 'POST' && { body: () => ({ email: 'planted@a.test' }) }),
          status: 403,
          code: 'PLX_PERMISSION_DENIED',
        })),
        ...(['GET', 'PATCH', 'DELETE'] as const).map((method) => ({
          route: `${method} /api/v1/tenants/{tenantId}/users/{id}`,
          method,
          url: () => `/api/v1/tenants/${a.id}/users/${a.userId}`,
          ...(method === 'PATCH' && { body: () => ({ status: 'disabled' }) }),
          status: 403,
          code: 'PLX_PERMISSION_DENIED',
        })),
      ];
    });
    afterAll(async () => {
      await t?.close();
    });

    it('has an attempt for every documented route that holds tenant data', async () => {
      const doc = await t.request({ method: 'GET', url: '/api/v1/openapi.json' });
      const operations = Object.entries(doc.body.paths as Record<string, Record<string, unknown>>).flatMap(
        ([path, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
      );
      const covered = new Set(attempts.map((x) => x.route));
      const uncovered = operations.filter((op) => !covered.has(op) && !NOT_TENANT_DATA.has(op));
      expect(uncovered, 'add a cross-tenant attempt for these routes').toEqual([]);
    });

    for (const credential of ['admin JWT', 'API key'] as const) {
      it(`refuses every attempt with tenant B's ${credential}, and tenant A is unchanged`, async () => {
        const before = await stateOf(t, a);
        for (const attempt of attempts) {
          const expected =
            credential === 'API key' && attempt.apiKey
              ? attempt.apiKey
              : { status: attempt.status, code: attempt.code };
          const res = await t.request({
            method: attempt.method,
            url: attempt.url(),
            token: credential === 'API key' ? b.apiKey : b.admin,
            ...(attempt.body && { body: attempt.body() }),
            ...(attempt.tenantHeader && { tenant: a.slug }),
          });
          expect(res.status, `${credential} ${attempt.route}: ${JSON.stringify(res.body)}`).toBe(
            expected.status,
          );
          if (expected.code) expect(res.body.code, attempt.route).toBe(expected.code);
          if (res.status >= 400) expectProblem(res, `${credential} ${attempt.route}`);
          if (res.status === 200 && attempt.leaks) {
            const text = JSON.stringify(res.body);
            for (const secret of attempt.leaks())
              expect(text, `${attempt.route} leaks ${secret}`).not.toContain(secret);
          }
        }
        expect(await stateOf(t, a)).toEqual(before);
      });
    }

    // issue 9 items 7 and 8: a NUL in a query string was a 500 from the database, and a long
    // path parameter Fastify's own application/json 414 with the path echoed
    describe('every route, with input no route should ever store', () => {
      let operations: Operation[];
      // a platform route needs the super admin to get past the guard to the input
      const tokenFor = async (op: Operation) =>
        op.path.startsWith('/api/v1/tenants') ? t.adminToken() : b.admin;
      beforeAll(async () => {
        operations = (await documentedOperations(t)).filter((op) => op.path.startsWith('/api/'));
      });

      it('refuses a NUL byte in each declared query parameter with a 400 naming it', async () => {
        const before = await stateOf(t, a);
        const tried: string[] = [];
        for (const op of operations) {
          for (const name of op.queryParams) {
            const context = `${op.method} ${op.path} ?${name}=%00`;
            const res = await t.request({
              method: op.method,
              url: `${urlOf(op)}?${name}=%00`,
              token: await tokenFor(op),
            });
            tried.push(context);
            expect(res.status, `${context}: ${JSON.stringify(res.body)}`).toBe(400);
            expectProblem(res, context);
            const own = OWN_QUERY_CHECK[`${op.method} ${op.path} ${name}`];
            expect(res.body.code, context).toBe(own ?? 'PLX_VALIDATION');
            if (!own)
              expect(res.body.errors, context).toEqual([
                expect.objectContaining({ field: `querystring.${name}` }),
              ]);
          }
        }
        // the routes of the issue, at least, were tried
        for (const route of [
          'GET /api/v1/users ?email',
          'GET /api/v1/audit-events ?action',
          'GET /api/v1/jobs ?type',
        ])
          expect(tried).toContain(`${route}=%00`);
        expect(await stateOf(t, a)).toEqual(before);
      });

      it('answers a 200-character path parameter with a problem, never echoing it', async () => {
        const before = await stateOf(t, a);
        const long = 'x'.repeat(200);
        let tried = 0;
        for (const op of operations) {
          for (const name of op.pathParams) {
            const route = `${op.method} ${op.path}`;
            const context = `${route} {${name}} of 200 characters`;
            const res = await t.request({
              method: op.method,
              url: urlOf(op, { [name]: long }),
              token: await tokenFor(op),
            });
            tried += 1;
            const expected = LONG_WILDCARD[route] ?? { status: 414, code: 'PLX_URL_TOO_LONG' };
            expect(res.status, `${context}: ${JSON.stringify(res.body)}`).toBe(expected.status);
            expect(res.body.code, context).toBe(expected.code);
            expectProblem(res, context);
            if (expected.code === 'PLX_URL_TOO_LONG')
              expect(JSON.stringify(res.body), context).not.toContain(long);
          }
        }
        expect(tried).toBeGreaterThan(20);
        expect(await stateOf(t, a)).toEqual(before);
      });
    });
  });
}

/** Tenant A as its own admin sees it: users, keys, roles, provider, sessions. */
async function stateOf(t: TestApp, a: { admin: string; userId: string; id: string; jobId: string }) {
  const get = async (url: string) => (await t.request({ method: 'GET', url, token: a.admin })).body;
  const users = await get('/api/v1/users');
  return {
    users: users.items.map((u: { id: string; roles: string[]; status: string; displayName: string }) => [
      u.id,
      u.roles,
      u.status,
      u.displayName,
    ]),
    keys: (await get('/api/v1/api-keys')).map((k: { id: string; revokedAt: string | null }) => [
      k.id,
      k.revokedAt,
    ]),
    roles: (await get('/api/v1/roles')).map((r: { key: string; permissions: string[] }) => [
      r.key,
      r.permissions,
    ]),
    provider: await get('/api/v1/identity-provider'),
    links: await get('/api/v1/identity-provider/links'),
    sessions: (await get(`/api/v1/users/${a.userId}/sessions`)).map((s: { id: string }) => s.id),
    tenant: (await t.app.services.tenants.get(a.id)).status,
    files: (await get('/api/v1/storage/list')).items.map((f: { path: string; etag: string }) => [
      f.path,
      f.etag,
    ]),
    content: await get('/api/v1/storage/download/private/a.txt'),
    usage: await get('/api/v1/storage/usage'),
    job: await get(`/api/v1/jobs/${a.jobId}`),
    schedules: await get('/api/v1/jobs/schedules'),
    search: (
      await t.request({
        method: 'POST',
        url: '/api/v1/search',
        token: a.admin,
        body: { q: 'alpha', prefix: false },
      })
    ).body.items.map((i: { type: string; id: string }) => `${i.type}/${i.id}`),
    apps: await get('/api/v1/apps'),
    events: (await get('/api/v1/events')).data.map((e: { id: string }) => e.id),
    deadLetters: (await get('/api/v1/dead-letters')).data.map(
      (d: { id: string; redrivenAt: string | null }) => [d.id, d.redrivenAt],
    ),
    webhooks: await get('/api/v1/webhooks'),
  };
}
