import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** The shared Redis connection (rate limits, job slots, signals), connected before use. */
export async function connectRedis(url: string, commandTimeout: number, logger: Logger): Promise<Redis> {
  // imported when configured: ioredis is start-up time an embedded install should not pay
  const { Redis } = await import('ioredis');
  // no offline queue and a command timeout: a Redis that is down fails at once, a frozen one
  // within commandTimeout, and neither holds a request (issue 11 item 4)
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: false,
    commandTimeout,
  });
  redis.on('error', (err) => logger.warn({ err: err.message }, 'redis connection error'));
  await redis.connect();
  return redis;
}
