import { type Static, Type } from '@sinclair/typebox';
import { PlexicaError } from '../../infra/errors.js';
import type { OutboundGuard } from '../../infra/net/outbound-guard.js';
import type { JobDefinition } from './service.js';

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'] as const;
/** The response body kept in the job's result; the rest is read no further. */
export const HTTP_REQUEST_BODY_KEPT = 64 * 1024;
// hop-by-hop and framing headers are the client's business, not the job's
const REFUSED_HEADERS = /^(host|content-length|transfer-encoding|connection|upgrade|te|trailer|keep-alive)$/i;

export const HttpRequestData = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      maxLength: 2048,
      pattern: '^https?://',
      description: 'https (http only for hosts on PLEXICA_OUTBOUND_ALLOW_HOSTS)',
    }),
    method: Type.Optional(
      Type.Union(
        METHODS.map((m) => Type.Literal(m)),
        { default: 'POST' },
      ),
    ),
    headers: Type.Optional(
      Type.Record(
        Type.String({ pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$" }),
        Type.String({ maxLength: 4096 }),
        {
          maxProperties: 50,
        },
      ),
    ),
    /** A text body as is, or `json`, sent with `content-type: application/json`. */
    body: Type.Optional(Type.String({ maxLength: 256 * 1024 })),
    json: Type.Optional(Type.Unknown()),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 60_000, default: 15_000 })),
    /** Statuses that count as success (default any 2xx); any other fails the attempt, which is retried. */
    expectStatus: Type.Optional(
      Type.Array(Type.Integer({ minimum: 100, maximum: 599 }), { minItems: 1, maxItems: 20 }),
    ),
  },
  { additionalProperties: false },
);
export type HttpRequestData = Static<typeof HttpRequestData>;

export interface HttpRequestResult {
  status: number;
  headers: Record<string, string>;
  /** The first 64 KiB of the body, as text. */
  body: string;
  truncated: boolean;
  durationMs: number;
}

/**
 * The built-in `http.request` job type: a delayed or scheduled HTTP call with
 * retries (what pg_net + pg_cron or QStash are used for). Every attempt goes
 * through the outbound guard (https only, no private, loopback, link-local or
 * metadata address, checked again at each redirect and for the connected
 * address), and enqueueing checks the URL the same way, so a refused URL is a
 * 400 at once instead of a job failing five times. The response is the job's
 * result; a status outside `expectStatus` fails the attempt.
 */
export function httpRequestJob(outbound: OutboundGuard): JobDefinition<HttpRequestData> {
  return {
    type: 'http.request',
    schema: HttpRequestData,
    maxAttempts: 5,
    timeoutMs: 65_000,
    concurrency: 10,
    tenantConcurrency: 5,
    async validate(data) {
      await outbound.assertSafeUrl(data.url);
      if (data.body !== undefined && data.json !== undefined) {
        throw new PlexicaError('PLX_VALIDATION', {
          detail: 'payload of http.request is invalid',
          errors: [{ field: 'data.json', message: 'give body or json, not both' }],
        });
      }
    },
    async handler({ data, signal }) {
      const started = performance.now();
      const headers = new Headers();
      for (const [name, value] of Object.entries(data.headers ?? {})) {
        if (!REFUSED_HEADERS.test(name)) headers.set(name, value);
      }
      let body: string | undefined = data.body;
      if (data.json !== undefined) {
        body = JSON.stringify(data.json);
        headers.set('content-type', 'application/json');
      }
      const response = await outbound.safeFetch(data.url, {
        method: data.method ?? 'POST',
        headers,
        ...(body !== undefined && { body }),
        signal: AbortSignal.any([signal, AbortSignal.timeout(data.timeoutMs ?? 15_000)]),
      });
      const { text, truncated } = await readSome(response, HTTP_REQUEST_BODY_KEPT);
      const result: HttpRequestResult = {
        status: response.status,
        headers: Object.fromEntries(response.headers),
        body: text,
        truncated,
        durationMs: Math.round(performance.now() - started),
      };
      const ok = data.expectStatus
        ? data.expectStatus.includes(response.status)
        : response.status >= 200 && response.status < 300;
      if (!ok) {
        throw new Error(
          `HTTP ${response.status} from ${new URL(data.url).host}: ${text.slice(0, 200).replace(/\s+/g, ' ')}`,
        );
      }
      return result;
    },
  };
}

/** The body's first `limit` bytes as text; the rest is not read (the connection is cancelled). */
async function readSome(response: Response, limit: number): Promise<{ text: string; truncated: boolean }> {
  if (!response.body) return { text: '', truncated: false };
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    if (size > limit) {
      truncated = true;
      await reader.cancel().catch(() => {});
      break;
    }
  }
  const bytes = Buffer.concat(chunks).subarray(0, limit);
  return { text: bytes.toString('utf8'), truncated };
}
