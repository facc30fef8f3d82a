import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createBatcher } from '../../../infra/batcher.js';
import { PlexicaError } from '../../../infra/errors.js';
import type { CloudEvent } from '../envelope.js';
import type { ConsumerSpec, Consumption, DriverDelivery, EventDriver } from './event-driver.js';
import { ACK, FETCH, RECLAIM } from './redis-scripts.js';

export interface RedisEventDriverOptions {
  redisUrl: string;
  /** Every key starts with it (`{prefix}:events` is the stream). */
  prefix: string;
  logger: Pick<Logger, 'warn'>;
  /** Idle consumers look this often; a publish wakes them at once through pub/sub. */
  pollIntervalMs: number;
  /** MAXLEN of the stream (approximate trimming, as Redis does it cheaply). */
  maxEvents: number;
}

type Row = [id: string, topic: string, key: string, envelope: string, attempt: string];

interface ScriptCommands {
  plxFetch(...args: (string | number)[]): Promise<Row[]>;
  plxAck(...args: (string | number)[]): Promise<Row[]>;
  plxReclaim(...args: (string | number)[]): Promise<Row[]>;
}

/** The id just before `id` in a stream (XGROUP SETID delivers what comes after it). */
function previousId(id: string): string {
  const [ms, seq] = id.split('-').map(BigInt) as [bigint, bigint];
  if (seq > 0n) return `${ms}-${seq - 1n}`;
  return ms > 0n ? `${ms - 1n}-18446744073709551615` : '0-0';
}

/**
 * Redis Streams: one stream for every topic, a Redis consumer group per bus
 * group (its last-delivered id is the group's position), XAUTOCLAIM for what
 * a dead member held, MAXLEN/MINID for retention. Topic filtering and the
 * order per key are done by Lua scripts (redis-scripts.ts).
 */
export async function createRedisEventDriver(options: RedisEventDriverOptions): Promise<EventDriver> {
  const { prefix, logger } = options;
  const connect = async () => {
    const client = new Redis(options.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
    client.on('error', (err) => logger.warn({ err: err.message }, 'event bus redis connection error'));
    await client.connect().catch((cause: unknown) => {
      throw new PlexicaError('PLX_EVENTS_UNAVAILABLE', { detail: 'Redis is unreachable', cause });
    });
    return client;
  };
  const redis = (await connect()) as Redis & ScriptCommands;
  redis.defineCommand('plxFetch', { numberOfKeys: 4, lua: FETCH });
  redis.defineCommand('plxAck', { numberOfKeys: 4, lua: ACK });
  redis.defineCommand('plxReclaim', { numberOfKeys: 4, lua: RECLAIM });
  const subscriber = await connect();
  const wakeChannel = `${prefix}:wake`;
  const sleepers = new Set<() => void>();
  // each consumer's mark: a wake-up during its round (between its fetch and its sleep) is not lost
  const marks = new Set<() => void>();
  subscriber.on('message', () => {
    for (const mark of marks) mark();
    for (const wake of sleepers) wake();
  });
  await subscriber.subscribe(wakeChannel);

  const stream = `${prefix}:events`;
  const groupKeys = (group: string) => [
    stream,
    `${prefix}:g:${group}:h`,
    `${prefix}:g:${group}:w`,
    `${prefix}:g:${group}:a`,
  ];
  const consumerName = `${os.hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;

  const ensureGroup = async (spec: ConsumerSpec) => {
    try {
      await redis.xgroup('CREATE', stream, spec.group, spec.from === 'earliest' ? '0' : '$', 'MKSTREAM');
    } catch (err) {
      if (!(err instanceof Error && err.message.startsWith('BUSYGROUP'))) throw err;
    }
  };

  const deliveries = (
    spec: ConsumerSpec,
    rows: Row[],
    consumer: string,
    ack: (entry: [id: string, key: string]) => Promise<void>,
  ): DriverDelivery[] =>
    rows.map(([id, topic, key, envelope, attempt]) => ({
      position: id,
      topic,
      key: key === '' ? null : key,
      event: JSON.parse(envelope) as CloudEvent,
      attempt: Number(attempt),
      ack: () => ack([id, key]),
      nack: async (delayMs) => {
        // idle time set so that XAUTOCLAIM takes it again `delayMs` from now
        const idle = Math.max(0, spec.ackTimeoutMs - delayMs);
        await redis.xclaim(stream, spec.group, consumer, 0, id, 'IDLE', idle, 'JUSTID');
      },
    }));

  return {
    async append(events) {
      if (events.length === 0) return;
      const pipeline = redis.pipeline();
      for (const e of events)
        pipeline.xadd(
          stream,
          'MAXLEN',
          '~',
          options.maxEvents,
          '*',
          't',
          e.topic,
          'k',
          e.key ?? '',
          'e',
          JSON.stringify(e.event),
        );
      pipeline.publish(wakeChannel, '');
      const results = await pipeline.exec();
      const failed = results?.find(([err]) => err);
      if (failed)
        throw new PlexicaError('PLX_EVENTS_UNAVAILABLE', {
          detail: 'Redis refused the events',
          cause: failed[0],
        });
    },
    async consume(spec, onBatch): Promise<Consumption> {
      await ensureGroup(spec);
      const consumer = `${consumerName}-${randomBytes(3).toString('hex')}`;
      const keys = groupKeys(spec.group);
      let running = true;
      let woken = false;
      const mark = () => {
        woken = true;
      };
      marks.add(mark);
      // entries this member took over from an ack (the next of a key)
      const local: DriverDelivery[] = [];
      // acks that arrive together are one pipeline; each hands its key's next entry to this member
      const ack = createBatcher(
        async (entries: [id: string, key: string][]) => {
          const pipeline = redis.pipeline() as ReturnType<Redis['pipeline']> & {
            plxAck(...args: (string | number)[]): unknown;
          };
          for (const [id, key] of entries) pipeline.plxAck(...keys, spec.group, consumer, id, key);
          const results = (await pipeline.exec()) ?? [];
          for (const [err, next] of results) {
            if (err) throw err;
            local.push(...deliveries(spec, next as Row[], consumer, ack));
          }
          return entries.map(() => undefined);
        },
        { maxBatch: 500 },
      );
      const loop = (async () => {
        while (running) {
          woken = false;
          try {
            const batch = local.splice(0);
            const reclaimed = await redis.plxReclaim(
              ...keys,
              spec.group,
              consumer,
              spec.ackTimeoutMs,
              spec.batchSize,
            );
            batch.push(...deliveries(spec, reclaimed, consumer, ack));
            const fresh = await redis.plxFetch(
              ...keys,
              spec.group,
              consumer,
              spec.batchSize,
              ...spec.patterns,
            );
            batch.push(...deliveries(spec, fresh, consumer, ack));
            if (batch.length > 0) {
              await onBatch(batch);
              continue;
            }
          } catch (err) {
            logger.warn({ err, group: spec.group }, 'event consumer round failed; retried');
          }
          if (!running) break;
          if (woken) continue;
          await new Promise<void>((resolve) => {
            const wake = () => {
              clearTimeout(timer);
              sleepers.delete(wake);
              resolve();
            };
            const timer = setTimeout(wake, options.pollIntervalMs);
            sleepers.add(wake);
          });
        }
      })();
      return {
        async stop() {
          running = false;
          marks.delete(mark);
          for (const wake of sleepers) wake();
          await loop;
          // what it still holds goes to the group's other members after the ack timeout
        },
      };
    },
    async seek(spec, point) {
      await ensureGroup(spec);
      let id: string;
      if ('position' in point) {
        const found = /^\d+-\d+$/.test(point.position)
          ? await redis.xrange(stream, point.position, point.position)
          : [];
        if (found.length === 0)
          throw new PlexicaError('PLX_EVENT_POSITION_UNKNOWN', {
            detail: `no retained event at position ${point.position}`,
          });
        id = previousId(point.position);
      } else {
        const [first] = await redis.xrange(stream, `${point.time.getTime()}-0`, '+', 'COUNT', 1);
        id = first ? previousId(first[0]) : '$';
      }
      const [, h, w, a] = groupKeys(spec.group) as [string, string, string, string];
      await redis.multi().xgroup('SETID', stream, spec.group, id).del(h, w, a).exec();
      await redis.publish(wakeChannel, '');
    },
    async deleteGroup(group) {
      const [, h, w, a] = groupKeys(group) as [string, string, string, string];
      await redis.multi().xgroup('DESTROY', stream, group).del(h, w, a).exec();
    },
    async lag(group) {
      const groups = (await redis.xinfo('GROUPS', stream).catch(() => [])) as unknown[][];
      for (const fields of groups) {
        const info = new Map<string, unknown>();
        for (let i = 0; i < fields.length; i += 2) info.set(String(fields[i]), fields[i + 1]);
        if (info.get('name') === group)
          return Number(info.get('lag') ?? 0) + Number(info.get('pending') ?? 0);
      }
      return 0;
    },
    async ping() {
      const started = performance.now();
      await redis.ping();
      return performance.now() - started;
    },
    async trim({ maxAgeMs, maxEvents }) {
      const byAge = await redis.xtrim(stream, 'MINID', '~', `${Date.now() - maxAgeMs}-0`);
      const bySize = await redis.xtrim(stream, 'MAXLEN', '~', maxEvents);
      return byAge + bySize;
    },
    async close() {
      for (const wake of sleepers) wake();
      await subscriber.quit();
      await redis.quit();
    },
  };
}
