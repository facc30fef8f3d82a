import type { Server } from './types.js';

export interface HealthDeps {
  /** Each dependency's round-trip check in milliseconds; throws when down. */
  checks: Record<string, () => Promise<number>>;
  ready: () => Promise<number>;
  metricsText: () => Promise<{ contentType: string; body: string }>;
}

/** `/health` (every dependency with its latency), `/ready` (database only), `/metrics`. */
export async function healthRoutes(server: Server, deps: HealthDeps): Promise<void> {
  server.get('/health', { schema: { hide: true } }, async (_request, reply) => {
    const entries = await Promise.all(
      Object.entries(deps.checks).map(async ([name, check]) => {
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
      await deps.ready();
      return { status: 'ready' };
    } catch {
      return reply.status(503).send({ status: 'not_ready' });
    }
  });
  server.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    const { contentType, body } = await deps.metricsText();
    return reply.type(contentType).send(body);
  });
}
