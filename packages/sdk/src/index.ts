import createFetchClient from 'openapi-fetch';
import type { components, paths } from './schema.js';

export type { components, paths } from './schema.js';
export type Tenant = components['schemas']['Tenant'];
export type User = components['schemas']['User'];
export type ApiKey = components['schemas']['ApiKey'];
export type Role = components['schemas']['Role'];
export type TokenPair = paths['/api/v1/auth/login']['post']['responses'][200]['content']['application/json'];
export type AuditEvent = components['schemas']['AuditEvent'];
export type IdentityProvider =
  paths['/api/v1/identity-provider']['get']['responses'][200]['content']['application/json'];
export type Problem = components['schemas']['Problem'];

type Body<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  requestBody?: { content: { 'application/json': infer B } };
}
  ? B
  : never;
type Query<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  parameters: { query?: infer Q };
}
  ? NonNullable<Q>
  : never;

export interface ClientOptions {
  /** Where Plexica listens, e.g. `http://localhost:8080`. */
  baseUrl: string;
  /** Access token or API key (`plx_…`). */
  token?: string;
  /** Tenant id or slug; only a super admin may act in a tenant by naming it. */
  tenant?: string;
  fetch?: typeof fetch;
}

/** A problem+json error response; every method throws it on a non-2xx status. */
export class PlexicaApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly problem: Partial<Problem> & Record<string, unknown>,
  ) {
    super(`${status} ${code}: ${String(problem.detail ?? problem.title ?? '')}`);
    this.name = 'PlexicaApiError';
  }
}

async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) {
    const problem = (error ?? {}) as Partial<Problem> & Record<string, unknown>;
    throw new PlexicaApiError(response.status, String(problem.code ?? 'UNKNOWN'), problem);
  }
  return data as T;
}

/**
 * Typed client for the Plexica REST API, generated from its OpenAPI document.
 *
 * @example
 * const plexica = createClient({ baseUrl: 'http://localhost:8080' });
 * const { accessToken } = await plexica.auth.login({ email, password, tenant: 'acme' });
 * plexica.setToken(accessToken);
 * const users = await plexica.users.list({ limit: 50 });
 */
export function createClient(options: ClientOptions) {
  let token = options.token;
  let tenant = options.tenant;
  const api = createFetchClient<paths>({
    baseUrl: options.baseUrl,
    ...(options.fetch && { fetch: options.fetch }),
  });
  api.use({
    onRequest({ request }) {
      if (token) request.headers.set('authorization', `Bearer ${token}`);
      if (tenant) request.headers.set('x-tenant-id', tenant);
      return request;
    },
  });
  const id = (value: string) => ({ params: { path: { id: value } } });

  return {
    /** The underlying openapi-fetch client, for routes without a helper. */
    api,
    setToken(next: string | undefined) {
      token = next;
    },
    setTenant(next: string | undefined) {
      tenant = next;
    },
    auth: {
      login: (body: Body<'/api/v1/auth/login', 'post'>) => unwrap(api.POST('/api/v1/auth/login', { body })),
      refresh: (refreshToken: string) => unwrap(api.POST('/api/v1/auth/refresh', { body: { refreshToken } })),
      logout: (refreshToken: string) => unwrap(api.POST('/api/v1/auth/logout', { body: { refreshToken } })),
      me: () => unwrap(api.GET('/api/v1/auth/me')),
      sessions: () => unwrap(api.GET('/api/v1/auth/sessions')),
      revokeSession: (sessionId: string) => unwrap(api.DELETE('/api/v1/auth/sessions/{id}', id(sessionId))),
    },
    tenants: {
      create: (body: Body<'/api/v1/tenants', 'post'>, idempotencyKey?: string) =>
        unwrap(
          api.POST('/api/v1/tenants', {
            body,
            ...(idempotencyKey && { headers: { 'idempotency-key': idempotencyKey } }),
          }),
        ),
      list: (query: Query<'/api/v1/tenants', 'get'> = {}) =>
        unwrap(api.GET('/api/v1/tenants', { params: { query } })),
      get: (tenantId: string) => unwrap(api.GET('/api/v1/tenants/{id}', id(tenantId))),
      update: (tenantId: string, body: Body<'/api/v1/tenants/{id}', 'patch'>) =>
        unwrap(api.PATCH('/api/v1/tenants/{id}', { ...id(tenantId), body })),
      remove: (tenantId: string) => unwrap(api.DELETE('/api/v1/tenants/{id}', id(tenantId))),
    },
    users: {
      create: (body: Body<'/api/v1/users', 'post'>) => unwrap(api.POST('/api/v1/users', { body })),
      list: (query: Query<'/api/v1/users', 'get'> = {}) =>
        unwrap(api.GET('/api/v1/users', { params: { query } })),
      get: (userId: string) => unwrap(api.GET('/api/v1/users/{id}', id(userId))),
      update: (userId: string, body: Body<'/api/v1/users/{id}', 'patch'>) =>
        unwrap(api.PATCH('/api/v1/users/{id}', { ...id(userId), body })),
      remove: (userId: string) => unwrap(api.DELETE('/api/v1/users/{id}', id(userId))),
    },
    apiKeys: {
      /** The returned `secret` is shown this once. */
      create: (body: Body<'/api/v1/api-keys', 'post'>) => unwrap(api.POST('/api/v1/api-keys', { body })),
      list: () => unwrap(api.GET('/api/v1/api-keys')),
      get: (keyId: string) => unwrap(api.GET('/api/v1/api-keys/{id}', id(keyId))),
      revoke: (keyId: string) => unwrap(api.DELETE('/api/v1/api-keys/{id}', id(keyId))),
    },
    roles: {
      list: () => unwrap(api.GET('/api/v1/roles')),
      create: (body: Body<'/api/v1/roles', 'post'>) => unwrap(api.POST('/api/v1/roles', { body })),
      update: (key: string, body: Body<'/api/v1/roles/{key}', 'patch'>) =>
        unwrap(api.PATCH('/api/v1/roles/{key}', { params: { path: { key } }, body })),
      remove: (key: string) => unwrap(api.DELETE('/api/v1/roles/{key}', { params: { path: { key } } })),
      permissions: () => unwrap(api.GET('/api/v1/permissions')),
    },
    auditEvents: {
      list: (query: Query<'/api/v1/audit-events', 'get'> = {}) =>
        unwrap(api.GET('/api/v1/audit-events', { params: { query } })),
    },
  };
}

export type PlexicaClient = ReturnType<typeof createClient>;
