import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { createMemoryRateLimitStore, type RateLimitStore } from './store.js';

/** A warning at most this often while Redis stays down (every request would log otherwise). */
const WARN_EVERY_MS = 10_000;

/**
 * Rate limits fail open when Redis fails (down, frozen past its command
 * timeout): each hit is counted by this process alone until Redis answers
 * again, so limits still hold per instance and no request gets a 500 or waits
 * on a dead Redis (issue 11 item 4). Counted in
 * `plexica_rate_limit_fallback_total` and logged as a warning at most every 10 s.
 * Fail open rather than closed: a rate limit protects the platform from a
 * client, and refusing every client because the counter store is down would
 * turn a Redis outage into an API outage.
 */
export function createFailOpenRateLimitStore(
  shared: RateLimitStore,
  options: { logger: Pick<Logger, 'warn'>; registry: Registry },
): RateLimitStore {
  const local = createMemoryRateLimitStore();
  const fallbacks = new Counter({
    name: 'plexica_rate_limit_fallback_total',
    help: 'Rate limit hits counted in this process because Redis failed (fail open)',
    registers: [options.registry],
  });
  let warnedAt = Number.NEGATIVE_INFINITY;
  const fellBack = (err: unknown) => {
    fallbacks.inc();
    const now = Date.now();
    if (now - warnedAt < WARN_EVERY_MS) return;
    warnedAt = now;
    options.logger.warn(
      { err: (err as Error)?.message },
      'rate limit store (Redis) failed: limits are counted per process until it answers',
    );
  };
  return {
    async hit(key, windowMs) {
      try {
        return await shared.hit(key, windowMs);
      } catch (err) {
        fellBack(err);
        return local.hit(key, windowMs);
      }
    },
    async reset(key) {
      await local.reset(key);
      await shared.reset(key).catch(fellBack);
    },
    async close() {
      await local.close();
      await shared.close();
    },
  };
}
