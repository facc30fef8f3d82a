import { timingSafeEqual } from 'node:crypto';
import { statfs } from 'node:fs/promises';
import type { Server } from '../http/types.js';
import { withTimeout } from '../infra/database/index.js';
import { PlexicaError } from '../infra/errors.js';
import type { HealthCheck, HealthReading } from '../module.js';

/** One dependency as `/health` reports it. */
export type CheckResult =
  | ({ status: 'up' | 'degraded'; latencyMs: number } & Record<string, unknown>)
  | { status: 'down'; error: string };

export interface HealthSnapshot {
  status: 'up' | 'degraded' | 'down';
  checks: Record<string, CheckResult>;
  /** The essential checks that are down: `/ready` is not ready while this is non-empty. */
  notReady: string[];
}

export interface HealthDeps {
  /** Each dependency's check: its round-trip time in ms (or a reading); throws when down. */
  checks: Record<string, HealthCheck>;
  /** Checks without which this process cannot serve (the database; Redis when jobs run on it). */
  essential: string[];
  /** A check that has not answered within this is down (a frozen engine must not hang a probe). */
  timeoutMs: number;
  /** Results are reused for this long: many probes cost one round of checks. */
  cacheMs: number;
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

const reading = (value: number | HealthReading): HealthReading =>
  typeof value === 'number' ? { latencyMs: value } : value;

/**
 * Runs every check at most once per `cacheMs` (concurrent callers share the
 * run in flight), each bounded by `timeoutMs`. A check may report itself
 * degraded (low disk): `/health` says so with 200; any check down is a 503.
 */
export function createHealthMonitor(deps: Omit<HealthDeps, 'metricsText'>): () => Promise<HealthSnapshot> {
  const entries = Object.entries(deps.checks);
  let cached: { at: number; snapshot: HealthSnapshot } | undefined;
  let inFlight: Promise<HealthSnapshot> | undefined;
  const run = async (): Promise<HealthSnapshot> => {
    const results = await Promise.all(
      entries.map(async ([name, check]): Promise<[string, CheckResult]> => {
        try {
          const {
            latencyMs,
            status = 'up',
            ...details
          } = reading(await withTimeout(check(), deps.timeoutMs, `${name} did not answer`));
          return [name, { status, latencyMs: Number(latencyMs.toFixed(3)), ...details }];
        } catch (err) {
          return [name, { status: 'down', error: (err as Error).message }];
        }
      }),
    );
    const statuses = results.map(([, r]) => r.status);
    return {
      status: statuses.includes('down') ? 'down' : statuses.includes('degraded') ? 'degraded' : 'up',
      checks: Object.fromEntries(results),
      notReady: results.filter(([n, r]) => r.status === 'down' && deps.essential.includes(n)).map(([n]) => n),
    };
  };
  return () => {
    if (cached && performance.now() - cached.at < deps.cacheMs) return Promise.resolve(cached.snapshot);
    inFlight ??= run().then((snapshot) => {
      cached = { at: performance.now(), snapshot };
      inFlight = undefined;
      return snapshot;
    });
    return inFlight;
  };
}

/**
 * Free space of the filesystems holding `paths` (the data dir, the blob
 * store's directory): degraded below `minFreeBytes`, so an operator hears of
 * a filling disk before writes fail with PLX_DISK_FULL.
 */
export function diskCheck(paths: string[], minFreeBytes: number): HealthCheck {
  const unique = [...new Set(paths)];
  return async () => {
    const started = performance.now();
    const volumes = await Promise.all(
      unique.map(async (path) => {
        const fs = await statfs(path);
        return { path, freeBytes: fs.bavail * fs.bsize, totalBytes: fs.blocks * fs.bsize };
      }),
    );
    const low = volumes.filter((v) => v.freeBytes < minFreeBytes);
    return {
      latencyMs: performance.now() - started,
      status: low.length > 0 ? 'degraded' : 'up',
      freeBytes: Math.min(...volumes.map((v) => v.freeBytes)),
      minFreeBytes,
      volumes,
      ...(low.length > 0 && {
        warning: `free space below ${minFreeBytes} bytes on ${low.map((v) => v.path).join(', ')}`,
      }),
    };
  };
}

/** `/health` (every dependency with its latency), `/ready` (the essential ones), `/metrics`. */
export async function healthRoutes(server: Server, deps: HealthDeps): Promise<void> {
  const snapshot = createHealthMonitor(deps);
  server.get('/health', { schema: { hide: true } }, async (_request, reply) => {
    const { status, checks } = await snapshot();
    return reply.status(status === 'down' ? 503 : 200).send({ status, checks });
  });
  server.get('/ready', { schema: { hide: true } }, async (_request, reply) => {
    const { notReady } = await snapshot();
    if (notReady.length === 0) return { status: 'ready' };
    return reply.status(503).header('retry-after', '5').send({ status: 'not_ready', down: notReady });
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
