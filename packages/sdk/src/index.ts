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
export type StoredFile = components['schemas']['File'];
export type Job = components['schemas']['Job'];

/** Bytes sent so far, and the total when it is known up front. */
export interface UploadProgress {
  loaded: number;
  total: number | undefined;
}

export interface UploadOptions {
  contentType?: string;
  /** false: fail with PLX_STORAGE_FILE_EXISTS instead of replacing a file. */
  overwrite?: boolean;
  /** Called as the body is handed to the network, at most once per chunk. */
  onProgress?: (progress: UploadProgress) => void;
  /** Cancels the upload; the server keeps the previous file, if any. */
  signal?: AbortSignal;
}

type UploadBody = Blob | Uint8Array | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

const CHUNK = 64 * 1024;

/** A stream over `body` that reports how much of it was read. */
function counting(body: UploadBody, onProgress: UploadOptions['onProgress']): ReadableStream<Uint8Array> {
  const total = body instanceof Blob ? body.size : body instanceof Uint8Array ? body.byteLength : undefined;
  let source: AsyncIterator<Uint8Array>;
  if (body instanceof Uint8Array) {
    source = (function* () {
      for (let i = 0; i < body.byteLength; i += CHUNK) yield body.subarray(i, i + CHUNK);
    })() as unknown as AsyncIterator<Uint8Array>;
  } else if (body instanceof Blob) {
    source = (body.stream() as unknown as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  } else {
    source = (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  }
  let loaded = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await source.next();
      if (next.done) {
        controller.close();
        return;
      }
      loaded += next.value.byteLength;
      controller.enqueue(next.value);
      onProgress?.({ loaded, total });
    },
    async cancel(reason) {
      await source.return?.(reason);
    },
  });
}

/** `a/b c.txt` → `a/b%20c.txt`: each segment encoded, the slashes kept. */
const encodePath = (path: string) => path.split('/').map(encodeURIComponent).join('/');

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

/** JSON of a 2xx response, or the problem document thrown as PlexicaApiError. */
async function parsed<T>(response: Response): Promise<T> {
  const body = (await response.json().catch(() => ({}))) as T & Partial<Problem>;
  if (!response.ok) throw new PlexicaApiError(response.status, String(body.code ?? 'UNKNOWN'), body);
  return body;
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
  const send = options.fetch ?? fetch;
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
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
    storage: {
      /**
       * Streams `body` to `path` in the caller's tenant, reporting progress.
       * @example await plexica.storage.upload('avatars/me.png', file, { onProgress: (p) => bar.update(p.loaded) })
       */
      async upload(path: string, body: UploadBody, options: UploadOptions = {}): Promise<StoredFile> {
        const query = new URLSearchParams({ path });
        if (options.overwrite === false) query.set('overwrite', 'false');
        const headers = new Headers({ 'content-type': options.contentType ?? 'application/octet-stream' });
        if (token) headers.set('authorization', `Bearer ${token}`);
        if (tenant) headers.set('x-tenant-id', tenant);
        const response = await send(`${baseUrl}/api/v1/storage/upload?${query}`, {
          method: 'POST',
          headers,
          body: counting(body, options.onProgress),
          signal: options.signal,
          duplex: 'half',
        } as RequestInit);
        return parsed<StoredFile>(response);
      },
      /** The raw response, so the body can be streamed; `range` like `bytes=0-1023`. */
      async download(
        path: string,
        options: { range?: string; signal?: AbortSignal } = {},
      ): Promise<Response> {
        const headers = new Headers();
        if (token) headers.set('authorization', `Bearer ${token}`);
        if (tenant) headers.set('x-tenant-id', tenant);
        if (options.range) headers.set('range', options.range);
        const response = await send(`${baseUrl}/api/v1/storage/download/${encodePath(path)}`, {
          headers,
          signal: options.signal,
        });
        if (!response.ok) await parsed(response);
        return response;
      },
      info: (path: string) => unwrap(api.GET('/api/v1/storage/info/{path}', { params: { path: { path } } })),
      list: (query: Query<'/api/v1/storage/list', 'get'> = {}) =>
        unwrap(api.GET('/api/v1/storage/list', { params: { query } })),
      remove: (path: string) => unwrap(api.DELETE('/api/v1/storage/{path}', { params: { path: { path } } })),
      copy: (body: Body<'/api/v1/storage/copy', 'post'>) =>
        unwrap(api.POST('/api/v1/storage/copy', { body })),
      move: (body: Body<'/api/v1/storage/move', 'post'>) =>
        unwrap(api.POST('/api/v1/storage/move', { body })),
      usage: () => unwrap(api.GET('/api/v1/storage/usage')),
      /**
       * A URL that works without a credential until it expires (GET downloads, PUT uploads).
       * A server without a public URL answers with a path; it is made absolute against `baseUrl`.
       */
      signedUrl: async (path: string, query: Query<'/api/v1/storage/signed-url/{path}', 'get'> = {}) => {
        const signed = await unwrap(
          api.GET('/api/v1/storage/signed-url/{path}', { params: { path: { path }, query } }),
        );
        return { ...signed, url: new URL(signed.url, `${baseUrl}/`).toString() };
      },
    },
    jobs: {
      /** `idempotencyKey` in the body returns the first job for a repeated key. */
      enqueue: (body: Body<'/api/v1/jobs', 'post'>) => unwrap(api.POST('/api/v1/jobs', { body })),
      enqueueBulk: (jobs: Body<'/api/v1/jobs', 'post'>[]) =>
        unwrap(api.POST('/api/v1/jobs/bulk', { body: { jobs } })),
      list: (query: Query<'/api/v1/jobs', 'get'> = {}) =>
        unwrap(api.GET('/api/v1/jobs', { params: { query } })),
      get: (jobId: string) => unwrap(api.GET('/api/v1/jobs/{id}', id(jobId))),
      cancel: (jobId: string) => unwrap(api.DELETE('/api/v1/jobs/{id}', id(jobId))),
      retry: (jobId: string) => unwrap(api.POST('/api/v1/jobs/{id}/retry', id(jobId))),
      types: () => unwrap(api.GET('/api/v1/jobs/types')),
      /** A job at every tick of `cron` (5 or 6 fields, @daily…), in `timezone` when given. */
      schedule: (body: Body<'/api/v1/jobs/schedule', 'post'>) =>
        unwrap(api.POST('/api/v1/jobs/schedule', { body })),
      schedules: () => unwrap(api.GET('/api/v1/jobs/schedules')),
      pauseSchedule: (scheduleId: string, paused = true) =>
        unwrap(api.PATCH('/api/v1/jobs/schedules/{id}', { ...id(scheduleId), body: { paused } })),
      removeSchedule: (scheduleId: string) =>
        unwrap(api.DELETE('/api/v1/jobs/schedules/{id}', id(scheduleId))),
    },
    auditEvents: {
      list: (query: Query<'/api/v1/audit-events', 'get'> = {}) =>
        unwrap(api.GET('/api/v1/audit-events', { params: { query } })),
    },
  };
}

export type PlexicaClient = ReturnType<typeof createClient>;
