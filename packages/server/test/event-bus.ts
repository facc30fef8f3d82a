import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { inject } from 'vitest';
import { type Database, openDatabase } from '../src/infra/database/index.js';
import { migrateSchema } from '../src/infra/database/migrator.js';
import { EVENT_DRIVERS } from '../src/modules/events/drivers/index.js';
import { busMigrations } from '../src/modules/events/migrations.js';
import { createEventBus, type EventBus } from '../src/modules/events/service.js';
import { type EventEngine, NATS_URL, REDIS_URL } from './engines.js';
import { removeEventEngineState } from './event-engine-app.js';
import { PG_ADMIN_URL } from './harness.js';
import { createScratchDatabase } from './scratch-database.js';

export interface BusFixture {
  bus: EventBus;
  database: Database;
  /** Connection settings a child process needs to open the same bus. */
  connection: { databaseUrl: string | undefined; redisPrefix: string };
  /** Another bus on the same engine and database (another process's, as far as the engine knows). */
  another(): Promise<EventBus>;
  close(): Promise<void>;
}

export const BUS_SETTINGS = {
  eventsPollIntervalMs: 50,
  eventsMaxAttempts: 3,
  eventsAckTimeoutSeconds: 1,
  eventsRetentionHours: 24,
  eventsRetentionMaxEvents: 1_000_000,
} as const;

/** A bus on a fresh database (a PGlite copy or a scratch PostgreSQL database) with only the bus's tables. */
export async function createBusFixture(engine: EventEngine): Promise<BusFixture> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'plexica-bus-'));
  let databaseUrl: string | undefined;
  let drop: (() => Promise<void>) | undefined;
  if (engine.database === 'pglite') {
    await cp(inject('pgliteTemplate'), path.join(dataDir, 'pgdata'), { recursive: true });
  } else {
    const scratch = await createScratchDatabase(PG_ADMIN_URL, 'plx_bus');
    databaseUrl = scratch.url;
    drop = scratch.drop;
  }
  const database = await openDatabase({ databaseUrl, databasePoolSize: 5, dataDir });
  await database.db.transaction().execute((trx) => migrateSchema(trx, 'core', busMigrations));
  const buses: EventBus[] = [];
  const redisPrefix = `plx-bus-${randomBytes(4).toString('hex')}`;
  const make = async () => {
    const bus = await openBus(engine, database, databaseUrl, redisPrefix);
    buses.push(bus);
    return bus;
  };
  const bus = await make();
  return {
    bus,
    database,
    connection: { databaseUrl, redisPrefix },
    another: make,
    async close() {
      for (const b of buses) await b.close();
      await database.close();
      await drop?.();
      await removeEventEngineState(engine, redisPrefix);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A bus on an open database, with the test settings (short ack timeout and retry delays). */
export async function openBus(
  engine: Pick<EventEngine, 'driver'>,
  database: Database,
  databaseUrl: string | undefined,
  redisPrefix: string,
): Promise<EventBus> {
  const logger = pino({ level: 'silent' });
  const config = {
    eventsDriver: engine.driver,
    eventsRedisPrefix: redisPrefix,
    natsUrl: NATS_URL,
    eventsNatsStream: redisPrefix,
    eventsNatsPartitions: 4,
    eventsLogRetentionDays: 90,
    eventsPublishRateLimit: 1000,
    ...BUS_SETTINGS,
  };
  const driver = await EVENT_DRIVERS[engine.driver].create(config, {
    db: database.db,
    logger,
    databaseUrl,
    redisUrl: REDIS_URL,
  });
  return createEventBus({
    db: database.db,
    driver,
    logger,
    maxDataBytes: 64 * 1024,
    maxAttempts: config.eventsMaxAttempts,
    ackTimeoutMs: config.eventsAckTimeoutSeconds * 1000,
    retention: { maxAgeMs: 3_600_000, maxEvents: 1_000_000 },
    retryDelayMs: () => 50,
  });
}

/** Resolves when `check` holds, polling; rejects with `what` after `ms`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  ms = 15_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
