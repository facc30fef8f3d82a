/**
 * @plexica/sdk — typed client for the Plexica REST API.
 *
 * @example
 * const plexica = createClient({ baseUrl: 'http://localhost:8080', token: apiKey });
 * const me = await plexica.request('GET', '/api/v1/auth/me');
 */
export interface ClientOptions {
  baseUrl: string;
  /** Access token or API key (`plx_…`). */
  token?: string;
  /** Only a super admin may act in a tenant by naming it. */
  tenant?: string;
  fetch?: typeof fetch;
}

/** A problem+json error response, thrown by every method on a non-2xx status. */
export class PlexicaApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly problem: Record<string, unknown>,
  ) {
    super(`${status} ${code}: ${String(problem.detail ?? problem.title ?? '')}`);
    this.name = 'PlexicaApiError';
  }
}

export function createClient(options: ClientOptions) {
  const doFetch = options.fetch ?? fetch;
  let token = options.token;
  return {
    setToken(next: string | undefined) {
      token = next;
    },
    async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
      const response = await doFetch(new URL(path, options.baseUrl), {
        method,
        headers: {
          ...(token && { authorization: `Bearer ${token}` }),
          ...(options.tenant && { 'x-tenant-id': options.tenant }),
          ...(body !== undefined && { 'content-type': 'application/json' }),
        },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      const data = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
      if (!response.ok) throw new PlexicaApiError(response.status, String(data?.code ?? 'UNKNOWN'), data ?? {});
      return data as T;
    },
  };
}
