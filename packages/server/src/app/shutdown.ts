import type { Server as HttpServer } from 'node:http';
import type { Logger } from 'pino';
import type { Server } from '../http/types.js';
import type { PlexicaModule } from '../module.js';
import type { App } from './create-app.js';
import type { Loops } from './loops.js';

/** How a shutdown went: empty `cut` = everything in flight ended in time. */
export interface ShutdownReport {
  /** What the timeout cut short, for the operator: "3 HTTP requests", "2 running jobs given back". */
  cut: string[];
  durationMs: number;
}

/** Requests the HTTP server is answering now (a request counts until its response is sent or aborted). */
export function countInFlight(server: HttpServer): () => number {
  let count = 0;
  server.on('request', (_req, res) => {
    count++;
    res.once('close', () => count--);
  });
  return () => count;
}

const elapsed = (ms: number) =>
  new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms).unref());

/**
 * Graceful shutdown (DESIGN "Process model"): at once and side by side, the
 * loops stop, the HTTP server stops accepting and finishes the requests it
 * has, and every module drains (workers stop fetching and finish their jobs);
 * what is still running at `timeoutMs` is cut and named in the report. Then
 * modules and engines close.
 */
export async function shutDown(parts: {
  server: Server;
  inFlight: () => number;
  loops: Loops;
  modules: PlexicaModule[];
  closers: (() => Promise<void>)[];
  timeoutMs: number;
  logger: Logger;
}): Promise<ShutdownReport> {
  const started = performance.now();
  const cut: string[] = [];
  const http = async () => {
    const closed = parts.server.close();
    if (
      (await Promise.race([closed.then(() => 'closed' as const), elapsed(parts.timeoutMs)])) === 'timeout'
    ) {
      const open = parts.inFlight();
      if (open > 0) cut.push(`${open} HTTP request${open === 1 ? '' : 's'} still running`);
      parts.server.server.closeAllConnections();
      await closed;
    }
  };
  const drains = parts.modules.map(async (module) => {
    try {
      cut.push(...((await module.drain?.(parts.timeoutMs)) ?? []));
    } catch (err) {
      cut.push(`${module.name}: drain failed (${(err as Error).message})`);
    }
  });
  await Promise.all([parts.loops.stop(), http(), ...drains]);
  for (const close of [...parts.closers].reverse()) {
    try {
      await close();
    } catch (err) {
      parts.logger.warn({ err }, 'closing an engine failed during shutdown');
    }
  }
  return { cut, durationMs: performance.now() - started };
}

/**
 * `plexica start`'s end: on SIGTERM or SIGINT, shut down and exit 0 when
 * everything in flight ended in time, 1 when the timeout cut something (the
 * log line says what), so a supervisor and an operator can tell the two apart.
 */
export function exitOnSignals(app: Pick<App, 'shutdown' | 'logger' | 'config'>): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.logger.info({ signal }, 'shutting down');
    // the drain itself is bounded by the timeout; this catches a close that hangs after it
    const force = setTimeout(() => {
      app.logger.error('shutdown hung past its timeout; exiting');
      process.exit(1);
    }, app.config.shutdownTimeoutMs + 5000);
    force.unref();
    app.shutdown().then(
      ({ cut, durationMs }) => {
        if (cut.length === 0) {
          app.logger.info({ durationMs: Math.round(durationMs) }, 'shut down cleanly');
          process.exit(0);
        }
        app.logger.error(
          { cut, durationMs: Math.round(durationMs) },
          `shutdown timeout cut: ${cut.join('; ')}`,
        );
        process.exit(1);
      },
      (err: unknown) => {
        app.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
