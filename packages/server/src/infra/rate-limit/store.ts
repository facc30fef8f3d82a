import type { Redis } from 'ioredis';
import { PlexicaError } from '../errors.js';

export interface WindowHit {
  /** Hits in the current window, this one included. */
  count: number;
  /** Milliseconds until the window resets. */
  resetInMs: number;
}

/**
 * Fixed-window counters. `memory` serves one process; `redis` is shared by all
 * instances (keys as given: the caller prefixes them `tenant:{slug}:…`).
 */
export interface RateLimitStore {
  hit(key: string, windowMs: number): Promise<WindowHit>;
  /** Forgets a key's window (a successful login clears its failures). */
  reset(key: string): Promise<void>;
  close(): Promise<void>;
}

/** The 429 of a full window; `Retry-After` is when the window resets. */
export function rateLimitedError(detail: string, resetInMs: number): PlexicaError {
  return new PlexicaError('PLX_RATE_LIMITED', {
    detail,
    extra: { retryAfter: Math.max(1, Math.ceil(resetInMs / 1000)) },
  });
}

export function createMemoryRateLimitStore(): RateLimitStore {
  const windows = new Map<string, { count: number; resetAt: number }>();
  // expired windows are dropped once a minute so the map stays bounded by active keys
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [key, w] of windows) if (w.resetAt <= now) windows.delete(key);
  }, 60_000);
  sweep.unref();
  return {
    async hit(key, windowMs) {
      const now = Date.now();
      let w = windows.get(key);
      if (!w || w.resetAt <= now) {
        w = { count: 0, resetAt: now + windowMs };
        windows.set(key, w);
      }
      w.count += 1;
      return { count: w.count, resetInMs: w.resetAt - now };
    },
    async reset(key) {
      windows.delete(key);
    },
    async close() {
      clearInterval(sweep);
    },
  };
}

export function createRedisRateLimitStore(redis: Redis): RateLimitStore {
  return {
    async hit(key, windowMs) {
      const results = await redis.multi().set(key, 0, 'PX', windowMs, 'NX').incr(key).pttl(key).exec();
      if (!results) throw new Error('rate limit transaction was aborted');
      for (const [err] of results) if (err) throw err;
      const count = Number(results[1]?.[1]);
      const ttl = Number(results[2]?.[1]);
      return { count, resetInMs: ttl > 0 ? ttl : windowMs };
    },
    async reset(key) {
      await redis.del(key);
    },
    async close() {},
  };
}
