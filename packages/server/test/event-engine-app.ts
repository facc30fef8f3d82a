import { Redis } from 'ioredis';
import type { PlexicaConfig } from '../src/config/index.js';
import { type EventEngine, NATS_URL, REDIS_URL } from './engines.js';

/**
 * Settings of a whole test app whose event bus runs on `engine`, with keys or a
 * stream of its own (`name`): the Redis and the NATS server are shared.
 */
export function eventEngineSettings(engine: EventEngine, name: string): Partial<PlexicaConfig> {
  if (engine.driver === 'redis')
    return { eventsDriver: 'redis', redisUrl: REDIS_URL, eventsRedisPrefix: name };
  if (engine.driver === 'nats')
    return { eventsDriver: 'nats', natsUrl: NATS_URL, eventsNatsStream: name, eventsNatsPartitions: 4 };
  return {};
}

/** Removes what `eventEngineSettings(engine, name)` left in the shared engine. */
export async function removeEventEngineState(engine: EventEngine, name: string): Promise<void> {
  if (engine.driver === 'redis') {
    const redis = new Redis(REDIS_URL);
    try {
      const keys = await redis.keys(`${name}:*`);
      if (keys.length > 0) await redis.del(...keys);
    } finally {
      await redis.quit();
    }
  }
  if (engine.driver === 'nats') {
    const { connect } = await import('@nats-io/transport-node');
    const { jetstreamManager } = await import('@nats-io/jetstream');
    const nc = await connect({ servers: NATS_URL });
    try {
      await (await jetstreamManager(nc)).streams.delete(name).catch(() => false);
    } finally {
      await nc.close();
    }
  }
}
