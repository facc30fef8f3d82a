import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { LoopDefinition, ProcessRole } from '../module.js';

/** The background loops of a process: started with its roles, stopped and awaited on close. */
export interface Loops {
  start(roles: ReadonlySet<ProcessRole>): void;
  /** Stops every timer, aborts runs in flight and waits for them to end. */
  stop(): Promise<void>;
}

/**
 * Runs each loop on the processes playing its role: every `intervalMs`, never
 * two runs of one loop at once (a slow run delays the next instead of piling
 * up), failures logged and counted in `plexica_loop_failures_total{loop}`.
 */
export function createLoops(
  definitions: LoopDefinition[],
  options: { logger: Logger; registry: Registry },
): Loops {
  const { logger } = options;
  const runs = new Counter({
    name: 'plexica_loop_runs_total',
    help: 'Runs of a background loop',
    labelNames: ['loop'],
    registers: [options.registry],
  });
  const failures = new Counter({
    name: 'plexica_loop_failures_total',
    help: 'Runs of a background loop that failed (logged with the loop name)',
    labelNames: ['loop'],
    registers: [options.registry],
  });
  const controller = new AbortController();
  const timers: NodeJS.Timeout[] = [];
  const inFlight = new Map<string, Promise<void>>();

  const runOnce = (loop: LoopDefinition) => {
    if (inFlight.has(loop.name) || controller.signal.aborted) return;
    const run = (async () => {
      try {
        await loop.run(controller.signal);
        runs.inc({ loop: loop.name });
      } catch (err) {
        runs.inc({ loop: loop.name });
        failures.inc({ loop: loop.name });
        if (!controller.signal.aborted)
          logger.error({ err, loop: loop.name }, 'background loop failed; retrying next interval');
      } finally {
        inFlight.delete(loop.name);
      }
    })();
    inFlight.set(loop.name, run);
  };

  return {
    start(roles) {
      for (const loop of definitions) {
        if (!roles.has(loop.role)) continue;
        const timer = setInterval(() => runOnce(loop), loop.intervalMs);
        timer.unref();
        timers.push(timer);
        if (loop.runAtStart) runOnce(loop);
      }
    },
    async stop() {
      for (const timer of timers) clearInterval(timer);
      timers.length = 0;
      controller.abort();
      await Promise.all(inFlight.values());
    },
  };
}
