import { timingSafeEqual } from 'node:crypto';
import type { Server } from '../http/types.js';
import { PlexicaError } from '../infra/errors.js';

export interface HealthDeps {
  /** Each dependency's round-trip check in milliseconds; throws when down. */
  checks: Record<string, () => Promise<number>>;
  ready: () => Promise<number>;
  metricsText: () => Promise<{ contentType: string; body: string }>;
  /** When set, `/metrics` needs it as a bearer token. */
  metricsToken?: string | undefined;
}

/** Constant-time: the token is compared without telling how much of it matched. */
function bearerMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(/^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1] ?? '');
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Concurrent callers share one in-flight run of `fn` (probes from many replicas cost one check). */
function coalesce<T>(fn: () => Promise<T>): () => Promise<T> {
  let inFlight: Promise<T> | undefined;
  return () => {
    inFlight ??= fn().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  };
}

/** `/health` (every dependency with its latency), `/ready` (database only), `/metrics`. */
export async function healthRoutes(server: Server, deps: HealthDeps): Promise<void> {
  const checks = Object.entries(deps.checks).map(([name, check]) => [name, coalesce(check)] as const);
  const ready = coalesce(deps.ready);
  server.get('/health', { schema: { hide: true } }, async (_request, reply) => {
    const entries = await Promise.all(
      checks.map(async ([name, check]) => {
        try {
          return [name, { status: 'up', latencyMs: Number((await check()).toFixed(3)) }] as const;
        } catch (err) {
          return [name, { status: 'down', error: (err as Error).message }] as const;
        }
      }),
    );
    const healthy = entries.every(([, result]) => result.status === 'up');
    return reply
      .status(healthy ? 200 : 503)
      .send({ status: healthy ? 'up' : 'down', checks: Object.fromEntries(entries) });
  });
  server.get('/ready', { schema: { hide: true } }, async (_request, reply) => {
    try {
      await ready();
      return { status: 'ready' };
    } catch {
      return reply.status(503).send({ status: 'not_ready' });
    }
  });
  server.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    if (deps.metricsToken && !bearerMatches(request.headers.authorization, deps.metricsToken)) {
      throw new PlexicaError('PLX_AUTH_REQUIRED', {
        detail: '/metrics needs the bearer token of PLEXICA_METRICS_TOKEN',
      });
    }
    const { contentType, body } = await deps.metricsText();
    return reply.type(contentType).send(body);
  });
}
