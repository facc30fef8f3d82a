import { readFileSync } from 'node:fs';
import path from 'node:path';

/** Roles one `plexica` process can play; `all` runs every role in one process. */
export const ROLES = ['all', 'api', 'worker', 'scheduler'] as const;
export type Role = (typeof ROLES)[number];
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export interface PlexicaConfig {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
  databasePoolSize: number;
  redisUrl: string | undefined;
  adminEmail: string | undefined;
  adminPassword: string | undefined;
  /** Master keys, newest first; the first one encrypts, all of them decrypt. */
  masterKey: string[];
  role: Role;
  logLevel: (typeof LOG_LEVELS)[number];
  bodyLimit: number;
  corsOrigins: string[];
  trustProxy: boolean;
  rateLimitUser: number;
  rateLimitTenant: number;
  rateLimitAnonymous: number;
  rateLimitWindowMs: number;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  tenantRetentionDays: number;
  purgeIntervalSeconds: number;
  migrateOnStart: boolean;
  shutdownTimeoutMs: number;
}

type Kind =
  | { type: 'string' }
  | { type: 'url'; protocols: string[] }
  | { type: 'int'; min: number; max: number }
  | { type: 'bool' }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'list' };

interface Option {
  env: string;
  kind: Kind;
  default?: unknown;
  description: string;
}

/**
 * Every configuration key, its environment variable, type and default. The
 * README configuration table is written from this list.
 */
export const OPTIONS: Record<keyof PlexicaConfig, Option> = {
  port: {
    env: 'PLEXICA_PORT',
    kind: { type: 'int', min: 0, max: 65535 },
    default: 8080,
    description: 'HTTP port',
  },
  host: {
    env: 'PLEXICA_HOST',
    kind: { type: 'string' },
    default: '0.0.0.0',
    description: 'HTTP bind address',
  },
  dataDir: {
    env: 'PLEXICA_DATA_DIR',
    kind: { type: 'string' },
    default: './.plexica',
    description: 'Data directory: embedded database, generated keys, lock file',
  },
  databaseUrl: {
    env: 'PLEXICA_DATABASE_URL',
    kind: { type: 'url', protocols: ['postgres:', 'postgresql:'] },
    description: 'PostgreSQL URL; unset = embedded PGlite in the data dir',
  },
  databasePoolSize: {
    env: 'PLEXICA_DATABASE_POOL_SIZE',
    kind: { type: 'int', min: 1, max: 500 },
    default: 10,
    description: 'Connections in the PostgreSQL pool (the embedded database always uses one)',
  },
  redisUrl: {
    env: 'PLEXICA_REDIS_URL',
    kind: { type: 'url', protocols: ['redis:', 'rediss:'] },
    description: 'Redis URL; unset = in-memory rate limits',
  },
  adminEmail: {
    env: 'PLEXICA_ADMIN_EMAIL',
    kind: { type: 'string' },
    description: 'Super admin created on first start (default admin@plexica.local)',
  },
  adminPassword: {
    env: 'PLEXICA_ADMIN_PASSWORD',
    kind: { type: 'string' },
    description: 'Password for that super admin; unset = generated and printed once',
  },
  masterKey: {
    env: 'PLEXICA_MASTER_KEY',
    kind: { type: 'list' },
    default: [],
    description:
      'Base64 32-byte master key(s), comma-separated, newest first. Required with PLEXICA_DATABASE_URL; embedded mode generates one into the data dir',
  },
  role: {
    env: 'PLEXICA_ROLE',
    kind: { type: 'enum', values: ROLES },
    default: 'all',
    description: 'Which roles this process runs',
  },
  logLevel: {
    env: 'PLEXICA_LOG_LEVEL',
    kind: { type: 'enum', values: LOG_LEVELS },
    default: 'info',
    description: 'Log level',
  },
  bodyLimit: {
    env: 'PLEXICA_BODY_LIMIT',
    kind: { type: 'int', min: 1024, max: 1024 ** 3 },
    default: 1024 * 1024,
    description: 'Largest JSON request body in bytes',
  },
  corsOrigins: {
    env: 'PLEXICA_CORS_ORIGINS',
    kind: { type: 'list' },
    default: [],
    description: 'Comma-separated origins allowed by CORS; empty = no cross-origin access',
  },
  trustProxy: {
    env: 'PLEXICA_TRUST_PROXY',
    kind: { type: 'bool' },
    default: false,
    description: 'Trust X-Forwarded-* headers',
  },
  rateLimitUser: {
    env: 'PLEXICA_RATE_LIMIT_USER',
    kind: { type: 'int', min: 1, max: 10_000_000 },
    default: 100,
    description: 'Requests per window per user or API key (a tenant may override)',
  },
  rateLimitTenant: {
    env: 'PLEXICA_RATE_LIMIT_TENANT',
    kind: { type: 'int', min: 1, max: 100_000_000 },
    default: 1000,
    description: 'Requests per window per tenant (a tenant may override)',
  },
  rateLimitAnonymous: {
    env: 'PLEXICA_RATE_LIMIT_ANONYMOUS',
    kind: { type: 'int', min: 1, max: 10_000_000 },
    default: 60,
    description: 'Unauthenticated requests (login, refresh) per window per client IP',
  },
  rateLimitWindowMs: {
    env: 'PLEXICA_RATE_LIMIT_WINDOW_MS',
    kind: { type: 'int', min: 1000, max: 86_400_000 },
    default: 60_000,
    description: 'Rate limit window',
  },
  accessTokenTtlSeconds: {
    env: 'PLEXICA_ACCESS_TOKEN_TTL',
    kind: { type: 'int', min: 30, max: 86_400 },
    default: 900,
    description: 'Access token lifetime in seconds',
  },
  refreshTokenTtlSeconds: {
    env: 'PLEXICA_REFRESH_TOKEN_TTL',
    kind: { type: 'int', min: 60, max: 31_536_000 },
    default: 30 * 86_400,
    description: 'Refresh token (session) lifetime in seconds',
  },
  tenantRetentionDays: {
    env: 'PLEXICA_TENANT_RETENTION_DAYS',
    kind: { type: 'int', min: 0, max: 3650 },
    default: 30,
    description: 'Days a deleted tenant is kept before its schema and data are purged',
  },
  purgeIntervalSeconds: {
    env: 'PLEXICA_PURGE_INTERVAL',
    kind: { type: 'int', min: 1, max: 86_400 },
    default: 3600,
    description: 'How often the scheduler purges tenants past their retention window',
  },
  migrateOnStart: {
    env: 'PLEXICA_MIGRATE_ON_START',
    kind: { type: 'bool' },
    default: true,
    description: 'Run pending migrations when the program starts',
  },
  shutdownTimeoutMs: {
    env: 'PLEXICA_SHUTDOWN_TIMEOUT_MS',
    kind: { type: 'int', min: 0, max: 600_000 },
    default: 10_000,
    description: 'Longest wait for in-flight work on shutdown',
  },
};

/** Thrown at boot; the message names every bad key. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

function parseValue(option: Option, raw: unknown): { value?: unknown; problem?: string } {
  const { kind } = option;
  const text = typeof raw === 'string' ? raw.trim() : raw;
  const shown = JSON.stringify(raw);
  switch (kind.type) {
    case 'string':
      if (typeof text !== 'string' || text === '')
        return { problem: `must be a non-empty string (got ${shown})` };
      return { value: text };
    case 'url': {
      if (typeof text !== 'string') return { problem: `must be a URL (got ${shown})` };
      try {
        const url = new URL(text);
        if (!kind.protocols.includes(url.protocol))
          return { problem: `must be a ${kind.protocols.join(' or ')}// URL (got ${url.protocol}//…)` };
        return { value: text };
      } catch {
        // never echo the value: URLs carry passwords
        return { problem: 'must be a valid URL' };
      }
    }
    case 'int': {
      const n = typeof text === 'number' ? text : /^-?\d+$/.test(String(text)) ? Number(text) : Number.NaN;
      if (!Number.isInteger(n) || n < kind.min || n > kind.max)
        return { problem: `must be an integer from ${kind.min} to ${kind.max} (got ${shown})` };
      return { value: n };
    }
    case 'bool':
      if (text === true || text === 'true' || text === '1') return { value: true };
      if (text === false || text === 'false' || text === '0') return { value: false };
      return { problem: `must be true or false (got ${shown})` };
    case 'enum':
      if (typeof text !== 'string' || !kind.values.includes(text))
        return { problem: `must be one of ${kind.values.join(', ')} (got ${shown})` };
      return { value: text };
    case 'list':
      if (Array.isArray(text)) return { value: text.map(String) };
      if (typeof text !== 'string') return { problem: `must be a comma-separated list (got ${shown})` };
      return {
        value: text
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      };
  }
}

/**
 * Builds the configuration from (lowest to highest precedence) defaults, the
 * JSON file named by `PLEXICA_CONFIG`, environment variables and `overrides`.
 * Nothing is read at import time; call this once in the program's entry point.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<PlexicaConfig> = {},
): PlexicaConfig {
  const problems: string[] = [];
  let file: Record<string, unknown> = {};
  const configPath = env.PLEXICA_CONFIG;
  if (configPath) {
    try {
      file = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError([`PLEXICA_CONFIG: cannot read ${configPath}: ${(err as Error).message}`]);
    }
    for (const key of Object.keys(file)) {
      if (!(key in OPTIONS)) problems.push(`${configPath}: unknown key "${key}"`);
    }
  }
  const knownEnv = new Set(Object.values(OPTIONS).map((o) => o.env));
  knownEnv.add('PLEXICA_CONFIG');
  for (const name of Object.keys(env)) {
    if (name.startsWith('PLEXICA_') && !knownEnv.has(name)) problems.push(`${name}: unknown setting`);
  }

  const config: Record<string, unknown> = {};
  for (const [key, option] of Object.entries(OPTIONS)) {
    const override = (overrides as Record<string, unknown>)[key];
    const source =
      override !== undefined
        ? { raw: override, name: key }
        : env[option.env] !== undefined && env[option.env] !== ''
          ? { raw: env[option.env], name: option.env }
          : file[key] !== undefined
            ? { raw: file[key], name: `${configPath}: ${key}` }
            : undefined;
    if (!source) {
      config[key] = option.default;
      continue;
    }
    const { value, problem } = parseValue(option, source.raw);
    if (problem) problems.push(`${source.name}: ${problem}`);
    else config[key] = value;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const result = config as unknown as PlexicaConfig;
  result.dataDir = path.resolve(result.dataDir);
  return result;
}
