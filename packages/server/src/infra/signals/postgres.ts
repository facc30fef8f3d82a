import pg from 'pg';
import type { Logger } from 'pino';
import type { SignalHub, SignalTransport } from './index.js';

// reconnect after a lost LISTEN connection: quickly at first, at most every 5 s
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

/**
 * Signals over PostgreSQL LISTEN/NOTIFY on one channel of the deployment's
 * database, through a connection of its own (a pooled one would lose its
 * LISTEN when handed back). NOTIFY is delivered on commit to every session
 * listening, this one included; the hub drops its own.
 */
export async function connectPostgresSignals(options: {
  url: string;
  channel: string;
  hub: SignalHub;
  logger: Pick<Logger, 'warn'>;
}): Promise<SignalTransport> {
  const { url, channel, hub, logger } = options;
  let client: pg.Client | undefined;
  let connected = false;
  let closed = false;
  let retryMs = RETRY_MIN_MS;
  let timer: NodeJS.Timeout | undefined;

  const open = async () => {
    const next = new pg.Client({ connectionString: url });
    next.on('notification', (msg) => {
      if (msg.channel === channel && msg.payload) hub.receive(msg.payload);
    });
    next.on('error', (err) => {
      logger.warn({ err: err.message }, 'cluster signal connection (PostgreSQL) failed');
      lost(next);
    });
    next.on('end', () => lost(next));
    await next.connect();
    await next.query(`LISTEN "${channel}"`);
    return next;
  };
  const lost = (which: pg.Client) => {
    if (client !== which) return;
    client = undefined;
    connected = false;
    which.end().catch(() => undefined);
    schedule();
  };
  const schedule = () => {
    if (closed || timer) return;
    timer = setTimeout(async () => {
      timer = undefined;
      try {
        client = await open();
        connected = true;
        retryMs = RETRY_MIN_MS;
        hub.resynced();
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'cluster signal connection (PostgreSQL) not back yet');
        retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
        schedule();
      }
    }, retryMs);
    timer.unref();
  };

  client = await open();
  connected = true;
  return {
    get connected() {
      return connected;
    },
    async send(envelope) {
      if (!client || !connected) throw new Error('cluster signal connection (PostgreSQL) is down');
      await client.query('select pg_notify($1, $2)', [channel, envelope]);
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      const last = client;
      client = undefined;
      connected = false;
      await last?.end();
    },
  };
}
