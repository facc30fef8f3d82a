import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { SignalHub, SignalTransport } from './index.js';

/**
 * Signals over Redis pub/sub on one channel: a subscriber connection (ioredis
 * subscribes again after a reconnect) and a publisher. Publishing while Redis is
 * unreachable fails at once rather than queueing (a late invalidation is worth
 * less than the TTL that bounds it anyway).
 */
export async function connectRedisSignals(options: {
  url: string;
  channel: string;
  hub: SignalHub;
  logger: Pick<Logger, 'warn'>;
}): Promise<SignalTransport> {
  const { url, channel, hub, logger } = options;
  const settings = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 } as const;
  const subscriber = new Redis(url, { ...settings, enableOfflineQueue: true });
  const publisher = new Redis(url, settings);
  let down = false;
  let closed = false;
  for (const connection of [subscriber, publisher])
    connection.on('error', (err) =>
      logger.warn({ err: err.message }, 'cluster signal connection (Redis) failed'),
    );
  subscriber.on('message', (from: string, message: string) => {
    if (from === channel) hub.receive(message);
  });
  subscriber.on('close', () => {
    down = true;
  });
  subscriber.on('ready', () => {
    if (!down) return;
    down = false;
    hub.resynced();
  });
  try {
    await Promise.all([subscriber.connect(), publisher.connect()]);
    await subscriber.subscribe(channel);
  } catch (err) {
    subscriber.disconnect();
    publisher.disconnect();
    throw err;
  }
  return {
    get connected() {
      return !closed && subscriber.status === 'ready' && publisher.status === 'ready';
    },
    async send(envelope) {
      await publisher.publish(channel, envelope);
    },
    async close() {
      closed = true;
      await Promise.allSettled([subscriber.quit(), publisher.quit()]);
    },
  };
}
