import createFetchClient, { type Client } from 'openapi-fetch';
import { toApiError } from './errors.js';
import type { paths } from './schema.js';

export interface ClientOptions {
  /** Where Plexica listens, e.g. `http://localhost:8080`. */
  baseUrl: string;
  /** Access token or API key (`plx_…`), sent as a bearer credential. */
  token?: string;
  /** Tenant id or slug; only a super admin may act in a tenant by naming it. */
  tenant?: string;
  /**
   * Sent as `X-Trace-ID`, so the server's logs, audit events and problem documents carry your id;
   * a function is asked before every request. The server replaces a value that is not 1–128 of
   * `A-Z a-z 0-9 . _ : -` with its own.
   */
  traceId?: string | (() => string | undefined);
  fetch?: typeof fetch;
}

/** What every resource is built from: both ways of calling the API carry the same headers. */
export interface Transport {
  /** The openapi-fetch client, for JSON routes. */
  readonly api: Client<paths>;
  /** `baseUrl` without a trailing slash. */
  readonly baseUrl: string;
  /** A plain fetch of `baseUrl + pathAndQuery`, for bodies openapi-fetch would buffer (streams). */
  send(pathAndQuery: string, init?: RequestInit): Promise<Response>;
  setToken(next: string | undefined): void;
  setTenant(next: string | undefined): void;
}

export function createTransport(options: ClientOptions): Transport {
  let token = options.token;
  let tenant = options.tenant;
  const fetchImpl = options.fetch ?? fetch;
  const baseUrl = options.baseUrl.replace(/\/+$/, '');

  /** The one place a request gets its credential, tenant and trace id. */
  const identify = (headers: Headers) => {
    if (token) headers.set('authorization', `Bearer ${token}`);
    if (tenant) headers.set('x-tenant-id', tenant);
    const traceId = typeof options.traceId === 'function' ? options.traceId() : options.traceId;
    if (traceId) headers.set('x-trace-id', traceId);
  };

  const api = createFetchClient<paths>({
    baseUrl: options.baseUrl,
    ...(options.fetch && { fetch: options.fetch }),
  });
  api.use({
    onRequest({ request }) {
      identify(request.headers);
      return request;
    },
  });

  return {
    api,
    baseUrl,
    send(pathAndQuery, init = {}) {
      const headers = new Headers(init.headers);
      identify(headers);
      return fetchImpl(`${baseUrl}${pathAndQuery}`, { ...init, headers });
    },
    setToken(next) {
      token = next;
    },
    setTenant(next) {
      tenant = next;
    },
  };
}

/** The data of an openapi-fetch call, or its problem document thrown as PlexicaApiError. */
export async function unwrap<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) throw toApiError(response.status, error);
  return data as T;
}

/** JSON of a 2xx response from `send`, or its problem document thrown as PlexicaApiError. */
export async function readJson<T>(response: Response): Promise<T> {
  const body: unknown = await response.json().catch(() => ({}));
  if (!response.ok) throw toApiError(response.status, body);
  return body as T;
}
