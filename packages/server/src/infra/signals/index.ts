import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { resolveSignalsDriver, type SignalsConfig } from './config.js';

export { type SignalsConfig, signalsOptions, signalsProblems } from './config.js';

/**
 * The cluster signal channel: small, best-effort messages every instance of a
 * deployment hears (cache invalidation now; realtime fan-out and job cancel
 * later). Not a queue: a signal sent while an instance is disconnected is lost
 * for it, so anything built on it needs a bound for a lost signal (the principal
 * cache has its TTL) and may listen to `onResync` to drop what it holds.
 *
 * - `publish` reaches every subscriber of `channel` on every instance,
 *   this one included (delivered here at once, before the promise settles),
 *   in publish order per instance. It rejects when the engine is unreachable
 *   (the local subscribers have still been told). Payloads are JSON values of
 *   at most 7,500 bytes serialised (PostgreSQL's NOTIFY takes 8,000).
 * - `subscribe` returns its own unsubscribe. A handler that throws is logged;
 *   the others still run.
 * - `onResync` handlers run when the channel is back after being down: what
 *   was published meanwhile was not heard here.
 *
 * @example
 * const off = signals.subscribe('identity.principals', (payload) => cache.drop(payload));
 * await signals.publish('identity.principals', { kind: 'session', id: sessionId });
 * off();
 */
export interface SignalChannel {
  /** Which engine carries the signals between instances. */
  readonly driver: 'memory' | 'postgres' | 'redis';
  publish(channel: string, payload: unknown): Promise<void>;
  subscribe(channel: string, handler: SignalHandler): () => void;
  onResync(handler: () => void): () => void;
  /** False while the engine is unreachable (always true for memory). */
  readonly connected: boolean;
  close(): Promise<void>;
}

export type SignalHandler = (payload: unknown) => void;

/** Largest serialised payload, so a signal that works in one process also works across them. */
export const MAX_SIGNAL_BYTES = 7_500;

/** What every driver carries: the channel, the payload and the publishing instance. */
export interface SignalEnvelope {
  /** The instance that published (so it does not deliver its own signal twice). */
  o: string;
  c: string;
  p: unknown;
}

/** How a driver reaches the other instances; the hub does local delivery for all of them. */
export interface SignalTransport {
  send(envelope: string): Promise<void>;
  readonly connected: boolean;
  close(): Promise<void>;
}

export interface SignalHub {
  readonly origin: string;
  /** Called by a transport with a message as it came from the engine. */
  receive(raw: string): void;
  /** Called by a transport that is back after being down. */
  resynced(): void;
}

/**
 * The channel over a transport; `connect` is given the hub before the first
 * publish, so it can deliver what it receives.
 */
export async function createSignalChannel(
  driver: SignalChannel['driver'],
  connect: (hub: SignalHub) => Promise<SignalTransport | undefined>,
  logger: Pick<Logger, 'error' | 'warn'>,
): Promise<SignalChannel> {
  const origin = randomUUID();
  const handlers = new Map<string, Set<SignalHandler>>();
  const resyncHandlers = new Set<() => void>();
  const deliver = (channel: string, payload: unknown) => {
    for (const handler of handlers.get(channel) ?? []) {
      try {
        handler(payload);
      } catch (err) {
        logger.error({ err, channel }, 'signal handler failed');
      }
    }
  };
  const hub: SignalHub = {
    origin,
    receive(raw) {
      let envelope: SignalEnvelope;
      try {
        envelope = JSON.parse(raw) as SignalEnvelope;
      } catch (err) {
        logger.warn({ err }, 'unreadable cluster signal ignored');
        return;
      }
      if (envelope.o !== origin && typeof envelope.c === 'string') deliver(envelope.c, envelope.p);
    },
    resynced() {
      for (const handler of resyncHandlers) {
        try {
          handler();
        } catch (err) {
          logger.error({ err }, 'signal resync handler failed');
        }
      }
    },
  };
  const transport = await connect(hub);
  return {
    driver,
    get connected() {
      return transport?.connected ?? true;
    },
    async publish(channel, payload) {
      const raw = JSON.stringify({ o: origin, c: channel, p: payload } satisfies SignalEnvelope);
      if (Buffer.byteLength(raw) > MAX_SIGNAL_BYTES)
        throw new Error(`signal on ${channel} is over ${MAX_SIGNAL_BYTES} bytes`);
      deliver(channel, payload);
      await transport?.send(raw);
    },
    subscribe(channel, handler) {
      let set = handlers.get(channel);
      if (!set) {
        set = new Set();
        handlers.set(channel, set);
      }
      set.add(handler);
      return () => {
        set.delete(handler);
        if (set.size === 0 && handlers.get(channel) === set) handlers.delete(channel);
      };
    },
    onResync(handler) {
      resyncHandlers.add(handler);
      return () => resyncHandlers.delete(handler);
    },
    async close() {
      await transport?.close();
    },
  };
}

interface SignalDriverEntry {
  /** Engines are imported when chosen: ioredis and a LISTEN client only when configured. */
  connect(
    config: SignalsConfig & { databaseUrl: string | undefined; redisUrl: string | undefined },
    hub: SignalHub,
    logger: Pick<Logger, 'warn'>,
  ): Promise<SignalTransport | undefined>;
}

/** One driver per resolved `PLEXICA_SIGNALS_DRIVER` value. */
export const SIGNAL_DRIVERS: Record<SignalChannel['driver'], SignalDriverEntry> = {
  // one process: the hub's local delivery is the whole channel
  memory: { connect: async () => undefined },
  postgres: {
    async connect(config, hub, logger) {
      const { connectPostgresSignals } = await import('./postgres.js');
      if (!config.databaseUrl) throw new Error('the postgres signal driver needs PLEXICA_DATABASE_URL');
      return connectPostgresSignals({
        url: config.databaseUrl,
        channel: `${config.signalsPrefix}_signals`,
        hub,
        logger,
      });
    },
  },
  redis: {
    async connect(config, hub, logger) {
      const { connectRedisSignals } = await import('./redis.js');
      if (!config.redisUrl) throw new Error('the redis signal driver needs PLEXICA_REDIS_URL');
      return connectRedisSignals({
        url: config.redisUrl,
        channel: `${config.signalsPrefix}:signals`,
        hub,
        logger,
      });
    },
  },
};

/** The channel the settings name (`auto` resolved against the engines configured). */
export function openSignalChannel(
  config: SignalsConfig & { databaseUrl: string | undefined; redisUrl: string | undefined },
  logger: Pick<Logger, 'error' | 'warn'>,
): Promise<SignalChannel> {
  const driver = resolveSignalsDriver(config);
  return createSignalChannel(driver, (hub) => SIGNAL_DRIVERS[driver].connect(config, hub, logger), logger);
}
