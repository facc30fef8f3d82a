import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enabled, REDIS_URL } from '../../../test/engines.js';
import { PG_ADMIN_URL } from '../../../test/harness.js';
import { createScratchDatabase } from '../../../test/scratch-database.js';
import { openSignalChannel, type SignalChannel } from './index.js';

const logger = pino({ level: 'silent' });
const prefix = () => `plx_test_${randomBytes(4).toString('hex')}`;
const received = (channel: SignalChannel, name: string) => {
  const seen: unknown[] = [];
  channel.subscribe(name, (payload) => seen.push(payload));
  return seen;
};
const until = async (check: () => boolean, ms: number) => {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  return check();
};

interface Engine {
  name: 'memory' | 'postgres' | 'redis';
  /** Two instances of one deployment, or one when the driver serves one process. */
  open(): Promise<SignalChannel[]>;
  /** Cuts the connection of `channel` from the engine's side. */
  cut?(channel: SignalChannel): Promise<void>;
}

let scratch: { url: string; drop(): Promise<void> } | undefined;
const ENGINES: Engine[] = [
  { name: 'memory', open: async () => [await openSignalChannel(settings('memory'), logger)] },
  ...(enabled('postgres')
    ? [
        {
          name: 'postgres' as const,
          async open() {
            const shared = { ...settings('postgres'), databaseUrl: scratch?.url };
            return [await openSignalChannel(shared, logger), await openSignalChannel(shared, logger)];
          },
          async cut() {
            // every LISTEN connection of the scratch database, from the server's side
            const client = new pg.Client({ connectionString: scratch?.url });
            await client.connect();
            await client.query(
              `select pg_terminate_backend(pid) from pg_stat_activity
                where datname = current_database() and pid <> pg_backend_pid() and query like 'LISTEN%'`,
            );
            await client.end();
          },
        },
      ]
    : []),
  ...(enabled('redis')
    ? [
        {
          name: 'redis' as const,
          async open() {
            const shared = { ...settings('redis'), redisUrl: REDIS_URL };
            return [await openSignalChannel(shared, logger), await openSignalChannel(shared, logger)];
          },
        },
      ]
    : []),
];

function settings(driver: Engine['name']) {
  return { signalsDriver: driver, signalsPrefix: prefix(), databaseUrl: undefined, redisUrl: undefined };
}

beforeAll(async () => {
  if (enabled('postgres')) scratch = await createScratchDatabase(PG_ADMIN_URL, 'plx_signals');
});
afterAll(async () => {
  await scratch?.drop();
});

for (const engine of ENGINES) {
  describe(`cluster signals (${engine.name})`, () => {
    let channels: SignalChannel[] = [];
    beforeAll(async () => {
      channels = await engine.open();
    });
    afterAll(async () => {
      for (const channel of channels) await channel.close();
    });

    it('delivers to this instance at once, and to every other one, in order', async () => {
      const [first, second = first] = channels as [SignalChannel, SignalChannel?];
      const here = received(first, 'test.order');
      const there = received(second, 'test.order');
      for (let i = 0; i < 5; i++) await first.publish('test.order', { i });
      // this instance heard each signal once, synchronously
      expect(here).toEqual([0, 1, 2, 3, 4].map((i) => ({ i })));
      expect(await until(() => there.length >= 5, 2_000)).toBe(true);
      expect(there).toEqual([0, 1, 2, 3, 4].map((i) => ({ i })));
      expect(first.driver).toBe(engine.name);
      expect(first.connected).toBe(true);
    });

    it('keeps channels apart and stops delivering after unsubscribe', async () => {
      const [first, second = first] = channels as [SignalChannel, SignalChannel?];
      const other = received(second, 'test.other');
      const seen: unknown[] = [];
      const off = second.subscribe('test.mine', (payload) => seen.push(payload));
      await first.publish('test.mine', 'one');
      expect(await until(() => seen.length === 1, 2_000)).toBe(true);
      off();
      await first.publish('test.mine', 'two');
      await first.publish('test.other', 'marker');
      expect(await until(() => other.length === 1, 2_000)).toBe(true);
      expect(seen).toEqual(['one']);
    });

    it('refuses a payload over the size every driver can carry', async () => {
      const [first] = channels as [SignalChannel];
      await expect(first.publish('test.big', 'x'.repeat(8_000))).rejects.toThrow(/over 7500 bytes/);
    });

    if (engine.cut) {
      it('reconnects after losing its connection and asks subscribers to resync', async () => {
        const [first, second] = channels as [SignalChannel, SignalChannel];
        let resyncs = 0;
        second.onResync(() => resyncs++);
        await engine.cut?.(second);
        expect(await until(() => resyncs > 0 && second.connected, 5_000)).toBe(true);
        const there = received(second, 'test.after');
        await first.publish('test.after', 'back');
        expect(await until(() => there.length === 1, 2_000)).toBe(true);
      });
    }
  });
}
