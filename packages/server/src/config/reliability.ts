import type { ConfigFragment } from '../infra/options.js';

/** How long the program waits for its engines, and what its health report counts as trouble. */
export interface ReliabilityConfig {
  databaseConnectTimeoutMs: number;
  databaseStatementTimeoutMs: number;
  redisCommandTimeoutMs: number;
  healthTimeoutMs: number;
  healthCacheMs: number;
  diskFreeMinMb: number;
}

/** Every setting of this fragment, its environment variable, type and default. */
export const reliabilityOptions: ConfigFragment<ReliabilityConfig>['options'] = {
  databaseConnectTimeoutMs: {
    env: 'PLEXICA_DATABASE_CONNECT_TIMEOUT_MS',
    kind: { type: 'int', min: 100, max: 600_000 },
    default: 5000,
    description:
      'Longest wait for a PostgreSQL connection (a free one from the pool, or a new one); then 503 PLX_DATABASE_UNAVAILABLE',
  },
  databaseStatementTimeoutMs: {
    env: 'PLEXICA_DATABASE_STATEMENT_TIMEOUT_MS',
    kind: { type: 'int', min: 0, max: 3_600_000 },
    default: 5000,
    description:
      'Longest a PostgreSQL statement may take, enforced by the server and, for a frozen or unreachable one, by the client; then 503 PLX_DATABASE_UNAVAILABLE (0 = no limit)',
  },
  redisCommandTimeoutMs: {
    env: 'PLEXICA_REDIS_COMMAND_TIMEOUT_MS',
    kind: { type: 'int', min: 50, max: 60_000 },
    default: 1000,
    description:
      'Longest wait for a Redis reply (rate limits, job dispatch and tenant slots); a frozen Redis then counts as down',
  },
  healthTimeoutMs: {
    env: 'PLEXICA_HEALTH_TIMEOUT_MS',
    kind: { type: 'int', min: 50, max: 60_000 },
    default: 1000,
    description: 'A dependency that does not answer its /health or /ready check within this is reported down',
  },
  healthCacheMs: {
    env: 'PLEXICA_HEALTH_CACHE_MS',
    kind: { type: 'int', min: 0, max: 60_000 },
    default: 1000,
    description:
      '/health and /ready reuse the last checks for this long (probes from many replicas cost one)',
  },
  diskFreeMinMb: {
    env: 'PLEXICA_DISK_FREE_MIN_MB',
    kind: { type: 'int', min: 0, max: 10_000_000 },
    default: 512,
    description:
      'Free space (MiB) on the data dir and the storage dir below which /health reports the disk degraded',
  },
};

export const reliabilityConfig: ConfigFragment<ReliabilityConfig> = { options: reliabilityOptions };
