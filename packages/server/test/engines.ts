import { randomBytes } from 'node:crypto';
import type { PlexicaConfig } from '../src/config/index.js';

/**
 * The engines the suites run on, declared once. `PLEXICA_TEST_ENGINES`
 * (comma-separated: pglite, postgres, redis, nats, s3) narrows a run to some of them,
 * e.g. `PLEXICA_TEST_ENGINES=pglite npx vitest run` for a quick local pass;
 * unset, everything runs, as CI does. Suites branch on what an engine
 * declares it can do, never on its name.
 */
export const ENGINE_NAMES = ['pglite', 'postgres', 'redis', 'nats', 's3'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

const selected = new Set(
  (process.env.PLEXICA_TEST_ENGINES ?? ENGINE_NAMES.join(','))
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean),
);
for (const name of selected) {
  if (!(ENGINE_NAMES as readonly string[]).includes(name))
    throw new Error(`PLEXICA_TEST_ENGINES: unknown engine "${name}" (known: ${ENGINE_NAMES.join(', ')})`);
}
export const enabled = (...needs: EngineName[]) => needs.every((name) => selected.has(name));

export const REDIS_URL = process.env.PLEXICA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const NATS_URL = `nats://127.0.0.1:${process.env.PLEXICA_TEST_NATS_PORT ?? 4222}`;

/** Every contract suite runs once per database engine. */
export const DATABASES = (['pglite', 'postgres'] as const).filter((kind) => enabled(kind));
export type DatabaseKind = 'pglite' | 'postgres';

export interface JobEngine {
  name: string;
  database: DatabaseKind;
  /** Settings a fresh config needs for this engine (a Redis prefix of its own per run). */
  overrides(): Partial<PlexicaConfig>;
  /**
   * The engine joins our database transaction: a job's delivery commits with its row.
   * Otherwise a tenant's jobs reach the engine through the dispatch window.
   */
  transactional: boolean;
}

/** The job engines: pg-boss on each database, BullMQ on Redis (status rows in PGlite). */
export const JOB_ENGINES: JobEngine[] = [
  ...DATABASES.map(
    (database): JobEngine => ({
      name: `pg-boss on ${database}`,
      database,
      overrides: () => ({}),
      transactional: true,
    }),
  ),
  ...(enabled('redis', 'pglite')
    ? [
        {
          name: 'BullMQ on Redis (status in pglite)',
          database: 'pglite' as const,
          overrides: (): Partial<PlexicaConfig> => ({
            jobsDriver: 'redis',
            redisUrl: REDIS_URL,
            jobsRedisPrefix: `plx-test-${randomBytes(4).toString('hex')}`,
          }),
          transactional: false,
        },
      ]
    : []),
];

/**
 * The event bus engines. `crossProcess`: several processes can share it, so a
 * consumer can be a child process that is killed (the embedded database is one
 * process's). `transactional`: it joins the database transaction (no outbox relay).
 */
export interface EventEngine {
  name: string;
  database: DatabaseKind;
  driver: 'postgres' | 'redis' | 'nats';
  crossProcess: boolean;
}

// Redis Streams keep the outbox and dead letters in PostgreSQL when it runs, so a child process can share them
const redisDatabase: DatabaseKind = DATABASES.includes('postgres') ? 'postgres' : 'pglite';
export const EVENT_ENGINES: EventEngine[] = [
  ...DATABASES.map(
    (database): EventEngine => ({
      name: `event log on ${database}`,
      database,
      driver: 'postgres',
      crossProcess: database === 'postgres',
    }),
  ),
  ...(enabled('redis') && DATABASES.length > 0
    ? [
        {
          name: `Redis Streams (outbox in ${redisDatabase})`,
          database: redisDatabase,
          driver: 'redis' as const,
          crossProcess: redisDatabase === 'postgres',
        },
      ]
    : []),
  ...(enabled('nats') && DATABASES.length > 0
    ? [
        {
          name: `NATS JetStream (outbox in ${redisDatabase})`,
          database: redisDatabase,
          driver: 'nats' as const,
          crossProcess: redisDatabase === 'postgres',
        },
      ]
    : []),
];

export interface BlobEngine {
  database: DatabaseKind;
  driver: 'filesystem' | 's3';
}

/** Storage over HTTP: the filesystem on each database, S3 (s3rver) on PGlite. */
export const STORAGE_ENGINES: BlobEngine[] = [
  ...DATABASES.map((database): BlobEngine => ({ database, driver: 'filesystem' })),
  ...(enabled('s3', 'pglite') ? [{ database: 'pglite' as const, driver: 's3' as const }] : []),
];
