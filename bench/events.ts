import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import pg from 'pg';
import { pino } from 'pino';
import { systemContext } from '../packages/server/src/context.js';
import { openDatabase } from '../packages/server/src/infra/database/index.js';
import { migrateSchema } from '../packages/server/src/infra/database/migrator.js';
import { inTransaction } from '../packages/server/src/infra/database/transaction.js';
import { EVENT_DRIVERS } from '../packages/server/src/modules/events/drivers/index.js';
import { busMigrations } from '../packages/server/src/modules/events/migrations.js';
import { createEventBus } from '../packages/server/src/modules/events/service.js';
import { createScratchDatabase } from '../packages/server/test/scratch-database.js';
import { PG_ADMIN_URL, percentile, record, stamp, table } from './lib.js';

const REDIS_URL = process.env.PLEXICA_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const EVENTS = Number(process.env.PLEXICA_BENCH_EVENTS ?? 20_000);
const SAMPLES = 200;
const ctx = systemContext('bench', { id: randomUUID(), slug: 'bench', schema: 'tenant_bench', settings: {} });

const NATS_URL = process.env.PLEXICA_BENCH_NATS_URL ?? 'nats://127.0.0.1:4222';

type Setup = { label: string; database: 'pglite' | 'postgres'; driver: 'postgres' | 'redis' | 'nats' };
const SETUPS: Setup[] = [
  { label: 'event log on PGlite', database: 'pglite', driver: 'postgres' },
  { label: 'event log on PostgreSQL', database: 'postgres', driver: 'postgres' },
  { label: 'Redis Streams', database: 'postgres', driver: 'redis' },
  { label: 'NATS JetStream', database: 'postgres', driver: 'nats' },
];

async function openSetup(setup: Setup) {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'plexica-bench-bus-'));
  const scratch =
    setup.database === 'postgres' ? await createScratchDatabase(PG_ADMIN_URL, 'plx_bench_bus') : undefined;
  const database = await openDatabase({ databaseUrl: scratch?.url, databasePoolSize: 10, dataDir });
  await database.db.transaction().execute((trx) => migrateSchema(trx, 'core', busMigrations));
  const prefix = `plx-bench-${randomBytes(4).toString('hex')}`;
  const logger = pino({ level: 'silent' });
  const driver = await EVENT_DRIVERS[setup.driver].create(
    {
      eventsDriver: setup.driver,
      eventsRedisPrefix: prefix,
      natsUrl: NATS_URL,
      eventsNatsStream: prefix,
      eventsNatsPartitions: 16,
      eventsPollIntervalMs: 1000,
      eventsMaxAttempts: 5,
      eventsAckTimeoutSeconds: 30,
      eventsRetentionHours: 24,
      eventsRetentionMaxEvents: 10_000_000,
      eventsLogRetentionDays: 90,
      eventsPublishRateLimit: 1000,
    },
    { db: database.db, logger, databaseUrl: scratch?.url, redisUrl: REDIS_URL },
  );
  const bus = createEventBus({
    db: database.db,
    driver,
    logger,
    maxDataBytes: 65_536,
    maxAttempts: 5,
    ackTimeoutMs: 30_000,
    retention: { maxAgeMs: 86_400_000, maxEvents: 10_000_000 },
  });
  return {
    bus,
    database,
    scratch,
    async close() {
      await bus.close();
      await database.close();
      await scratch?.drop();
      await rm(dataDir, { recursive: true, force: true });
      if (setup.driver === 'nats') {
        const nc = await connect({ servers: NATS_URL });
        await (await jetstreamManager(nc)).streams.delete(prefix).catch(() => false);
        await nc.close();
      }
      if (setup.driver === 'redis') {
        const r = new Redis(REDIS_URL);
        const keys = await r.keys(`${prefix}:*`);
        if (keys.length) await r.del(...keys);
        await r.quit();
      }
    },
  };
}

/** Publish → handler, one event at a time on an idle bus. */
async function busLatency(s: Awaited<ReturnType<typeof openSetup>>) {
  let resolve: (() => void) | undefined;
  const sub = await s.bus.subscribe({
    group: 'latency',
    topics: ['bench.*'],
    handler: async () => resolve?.(),
  });
  const times: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const got = new Promise<void>((r) => (resolve = r));
    const started = performance.now();
    await s.bus.publish(ctx, 'lat.item.made', { i });
    await got;
    times.push(performance.now() - started);
  }
  await sub.close();
  return times.sort((a, b) => a - b);
}

/** EVENTS published through the outbox (100 per transaction, 4 transactions at once), one group consuming. */
async function busThroughput(s: Awaited<ReturnType<typeof openSetup>>, MANY: boolean) {
  let seen = 0;
  let done: (() => void) | undefined;
  const finished = new Promise<void>((r) => (done = r));
  const sub = await s.bus.subscribe({
    group: 'throughput',
    topics: ['bench.*'],
    batchSize: 500,
    handler: async () => {
      if (++seen === EVENTS) done?.();
    },
  });
  const started = performance.now();
  const batches = EVENTS / 100;
  let next = 0;
  const publisher = async () => {
    while (next < batches) {
      next++;
      await inTransaction(s.database.db, async (tx) => {
        if (MANY)
          await s.bus.publishManyIn(
            tx,
            ctx,
            Array.from({ length: 100 }, (_, i) => ({ type: 'tp.item.made', data: { i } })),
          );
        else for (let i = 0; i < 100; i++) await s.bus.publishIn(tx, ctx, 'tp.item.made', { i });
      });
    }
  };
  await Promise.all([publisher(), publisher(), publisher(), publisher()]);
  await finished;
  const seconds = (performance.now() - started) / 1000;
  await sub.close();
  return EVENTS / seconds;
}

/** The raw engines: bare XADD/XREADGROUP, and bare INSERT + NOTIFY / cursor reads. */
async function rawRedis() {
  const stream = `plx-bench-raw-${randomBytes(4).toString('hex')}`;
  const producer = new Redis(REDIS_URL);
  const consumer = new Redis(REDIS_URL);
  await producer.xgroup('CREATE', stream, 'g', '$', 'MKSTREAM');
  const times: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const started = performance.now();
    const read = consumer.xreadgroup('GROUP', 'g', 'c', 'COUNT', 1, 'BLOCK', 1000, 'STREAMS', stream, '>');
    await producer.xadd(stream, '*', 'e', JSON.stringify({ i }));
    const res = (await read) as [string, [string, string[]][]][] | null;
    const id = res?.[0]?.[1][0]?.[0];
    if (id) await consumer.xack(stream, 'g', id);
    times.push(performance.now() - started);
  }
  const started = performance.now();
  let seen = 0;
  const consume = (async () => {
    while (seen < EVENTS) {
      const res = (await consumer.xreadgroup(
        'GROUP',
        'g',
        'c',
        'COUNT',
        500,
        'BLOCK',
        1000,
        'STREAMS',
        stream,
        '>',
      )) as [string, [string, string[]][]][] | null;
      const entries = res?.[0]?.[1] ?? [];
      if (entries.length) await consumer.xack(stream, 'g', ...entries.map((e) => e[0]));
      seen += entries.length;
    }
  })();
  for (let b = 0; b < EVENTS / 100; b++) {
    const p = producer.pipeline();
    for (let i = 0; i < 100; i++) p.xadd(stream, '*', 'e', JSON.stringify({ i }));
    await p.exec();
  }
  await consume;
  const rate = EVENTS / ((performance.now() - started) / 1000);
  await producer.del(stream);
  await producer.quit();
  await consumer.quit();
  return { times: times.sort((a, b) => a - b), rate };
}

/** Bare JetStream: publish with awaited acks, one durable pull consumer, acks per message. */
async function rawNats() {
  const stream = `plx-bench-raw-${randomBytes(4).toString('hex')}`;
  const nc = await connect({ servers: NATS_URL });
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  await jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
  await jsm.consumers.add(stream, {
    durable_name: 'g',
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.New,
  });
  const consumer = await js.consumers.get(stream, 'g');
  let onMessage: (() => void) | undefined;
  let seen = 0;
  const messages = await consumer.consume({ max_messages: 500 });
  void (async () => {
    for await (const m of messages) {
      m.ack();
      seen++;
      onMessage?.();
    }
  })();
  const times: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const got = new Promise<void>((r) => (onMessage = r));
    const started = performance.now();
    await js.publish(`${stream}.lat`, JSON.stringify({ i }));
    await got;
    times.push(performance.now() - started);
  }
  const before = seen;
  let finished: (() => void) | undefined;
  const done = new Promise<void>((r) => (finished = r));
  onMessage = () => {
    if (seen - before === EVENTS) finished?.();
  };
  const started = performance.now();
  for (let b = 0; b < EVENTS / 100; b++)
    await Promise.all(
      Array.from({ length: 100 }, (_, i) => js.publish(`${stream}.tp`, JSON.stringify({ i }))),
    );
  await done;
  const rate = EVENTS / ((performance.now() - started) / 1000);
  await messages.close();
  await jsm.streams.delete(stream);
  await nc.close();
  return { times: times.sort((a, b) => a - b), rate };
}

async function rawPostgres(url: string) {
  const pool = new pg.Pool({ connectionString: url, max: 6 });
  await pool.query('create table raw_events (position bigserial primary key, envelope jsonb not null)');
  const listener = new pg.Client({ connectionString: url });
  await listener.connect();
  await listener.query('listen raw');
  let wake: (() => void) | undefined;
  listener.on('notification', () => wake?.());
  const times: number[] = [];
  let cursor = 0;
  for (let i = 0; i < SAMPLES; i++) {
    const started = performance.now();
    const woke = new Promise<void>((r) => (wake = r));
    await pool.query(
      `with i as (insert into raw_events (envelope) values ($1)) select pg_notify('raw', '')`,
      [{ i }],
    );
    await woke;
    const rows = await pool.query(
      'select position from raw_events where position > $1 order by position limit 100',
      [cursor],
    );
    cursor = Number(rows.rows.at(-1)?.position ?? cursor);
    times.push(performance.now() - started);
  }
  const started = performance.now();
  let seen = 0;
  const consume = (async () => {
    while (seen < EVENTS) {
      const rows = await pool.query(
        'select position from raw_events where position > $1 order by position limit 1000',
        [cursor],
      );
      if (rows.rows.length === 0) await new Promise((r) => setTimeout(r, 1));
      seen += rows.rows.length;
      cursor = Number(rows.rows.at(-1)?.position ?? cursor);
    }
  })();
  let next = 0;
  const publisher = async () => {
    while (next < EVENTS / 100) {
      next++;
      const values = Array.from({ length: 100 }, (_, i) => JSON.stringify({ i }));
      await pool.query('insert into raw_events (envelope) select * from unnest($1::jsonb[])', [values]);
    }
  };
  // one publisher: concurrent bare inserts commit out of position order and a bare cursor skips
  // the late ones (what the bus's xid8 cursor exists for), so the reference cannot run them side by side
  await publisher();
  await consume;
  const rate = EVENTS / ((performance.now() - started) / 1000);
  await listener.end();
  await pool.end();
  return { times: times.sort((a, b) => a - b), rate };
}

const ms = (v: number) => v.toFixed(1);

export async function events(): Promise<void> {
  const rows: (string | number)[][] = [];
  for (const setup of SETUPS) {
    const s = await openSetup(setup);
    try {
      const lat = await busLatency(s);
      const rate = await busThroughput(s, false);
      const many = await busThroughput(s, true);
      const raw =
        setup.driver === 'redis'
          ? await rawRedis()
          : setup.driver === 'nats'
            ? await rawNats()
            : setup.database === 'postgres' && s.scratch
              ? await rawPostgres(s.scratch.url)
              : undefined;
      rows.push([
        setup.label,
        ms(percentile(lat, 50)),
        ms(percentile(lat, 95)),
        raw ? `${ms(percentile(raw.times, 50))} / ${ms(percentile(raw.times, 95))}` : '—',
        Math.round(rate),
        Math.round(many),
        raw ? Math.round(raw.rate) : '—',
        raw ? `${(rate / raw.rate).toFixed(2)} / ${(many / raw.rate).toFixed(2)}` : '—',
      ]);
      console.log(rows.at(-1)?.join(' | '));
    } finally {
      await s.close();
    }
  }
  const headers = [
    'engine',
    'publish→handler P50 ms',
    'P95 ms',
    'raw P50 / P95 ms',
    'outbox events/s (publishIn)',
    'outbox events/s (publishManyIn)',
    'raw events/s',
    'ratio (publishIn / publishManyIn)',
  ];
  await record(
    'events',
    `## Event bus (\`bench/events.ts\`)\n\n${stamp()} · 2026-12-01, machine "2 cores shared, node-svc"\n\n` +
      `${SAMPLES} single events on an idle bus, then ${EVENTS} events published with \`publishIn\` (one call per event) and again with \`publishManyIn\` (one call per transaction), 100 per transaction, 4 transactions at once, ` +
      'and consumed by one group, first publish to last handled. Raw: bare XADD + XREADGROUP/XACK (Redis); bare JetStream publish (acks awaited per 100) and a durable pull consumer acking each message (NATS); bare INSERT + NOTIFY and a cursor read (PostgreSQL), same batches.\n\n' +
      table(headers, rows),
  );
}
