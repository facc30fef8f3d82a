import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { allowHostProblem } from './infra/net/outbound-guard.js';

/** Roles one `plexica` process can play; `all` runs every role in one process. */
export const ROLES = ['all', 'api', 'worker', 'scheduler'] as const;
export type Role = (typeof ROLES)[number];
export const JOBS_DRIVERS = ['postgres', 'redis'] as const;
export const STORAGE_DRIVERS = ['filesystem', 's3'] as const;
export const S3_BUCKET_MODES = ['bucket', 'prefix'] as const;
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
  /** Proxies in front of the server: a hop count (0 = none) or their addresses and CIDRs. */
  trustProxy: number | string[];
  rateLimitUser: number;
  rateLimitTenant: number;
  rateLimitAnonymous: number;
  rateLimitWindowMs: number;
  loginMaxFailures: number;
  loginFailureWindowSeconds: number;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  tenantRetentionDays: number;
  purgeIntervalSeconds: number;
  migrateOnStart: boolean;
  shutdownTimeoutMs: number;
  publicUrl: string | undefined;
  publicHosts: string[];
  /** Hosts (`host` or `host:port`) outbound requests may reach over http and on private addresses. */
  outboundAllowHosts: string[];
  storageDriver: (typeof STORAGE_DRIVERS)[number];
  storageDir: string | undefined;
  storageMaxFileSize: number;
  storageQuotaBytes: number;
  storageSignedUrlMaxSeconds: number;
  s3Endpoint: string | undefined;
  s3Region: string;
  s3AccessKeyId: string | undefined;
  s3SecretAccessKey: string | undefined;
  s3ForcePathStyle: boolean;
  s3BucketMode: (typeof S3_BUCKET_MODES)[number];
  s3Bucket: string | undefined;
  s3BucketPrefix: string | undefined;
  jobsDriver: (typeof JOBS_DRIVERS)[number];
  jobsRedisPrefix: string;
  jobsLeaseSeconds: number;
  jobsPollIntervalSeconds: number;
  jobsRetryDelaySeconds: number;
}

type Kind =
  | { type: 'string' }
  | { type: 'url'; protocols: string[] }
  | { type: 'int'; min: number; max: number }
  | { type: 'bool' }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'list' }
  | { type: 'trust-proxy' };

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
    description: 'Redis URL: shared rate limits (unset = in-memory), and jobs with PLEXICA_JOBS_DRIVER=redis',
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
    kind: { type: 'trust-proxy' },
    default: 0,
    description:
      'Proxies whose X-Forwarded-For/-Proto/-Host are believed: a comma-separated list of proxy addresses and CIDRs (also loopback, linklocal, uniquelocal), or a hop count (1 = one proxy in front, only safe when nothing but that proxy can reach the server; 0 or false = none). true (every hop) is refused: any client could then choose its address',
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
    description:
      'Unauthenticated requests (login, refresh) and failed bearer credentials per window per client IP',
  },
  rateLimitWindowMs: {
    env: 'PLEXICA_RATE_LIMIT_WINDOW_MS',
    kind: { type: 'int', min: 1000, max: 86_400_000 },
    default: 60_000,
    description: 'Rate limit window',
  },
  loginMaxFailures: {
    env: 'PLEXICA_LOGIN_MAX_FAILURES',
    kind: { type: 'int', min: 1, max: 10_000 },
    default: 10,
    description:
      'Failed password logins one account (tenant + email) may have per PLEXICA_LOGIN_FAILURE_WINDOW; then its logins answer 429 until the window ends, from any address',
  },
  loginFailureWindowSeconds: {
    env: 'PLEXICA_LOGIN_FAILURE_WINDOW',
    kind: { type: 'int', min: 1, max: 86_400 },
    default: 900,
    description: 'Window of the failed-login counter per account, in seconds (a successful login resets it)',
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
  publicUrl: {
    env: 'PLEXICA_PUBLIC_URL',
    kind: { type: 'url', protocols: ['http:', 'https:'] },
    description:
      "Base URL clients reach this server at, for signed URLs; unset = the request's Host if PLEXICA_PUBLIC_HOSTS lists it, else signed URLs are paths",
  },
  publicHosts: {
    env: 'PLEXICA_PUBLIC_HOSTS',
    kind: { type: 'list' },
    default: [],
    description:
      'Hosts (host or host:port, as the Host header carries them) signed URLs may be built on when PLEXICA_PUBLIC_URL is unset; any other Host gets a relative URL',
  },
  outboundAllowHosts: {
    env: 'PLEXICA_OUTBOUND_ALLOW_HOSTS',
    kind: { type: 'list' },
    default: [],
    description:
      'Comma-separated host or host:port entries that requests the server makes for tenants (OIDC discovery and keys) may reach over http and on loopback/private addresses; all others must be https on a public address',
  },
  storageDriver: {
    env: 'PLEXICA_STORAGE_DRIVER',
    kind: { type: 'enum', values: STORAGE_DRIVERS },
    default: 'filesystem',
    description: 'Where file contents live: the data dir, or any S3 API',
  },
  storageDir: {
    env: 'PLEXICA_STORAGE_DIR',
    kind: { type: 'string' },
    description:
      'Root of the filesystem driver (default <data dir>/storage); one directory tenant-{id} per tenant',
  },
  storageMaxFileSize: {
    env: 'PLEXICA_STORAGE_MAX_FILE_SIZE',
    kind: { type: 'int', min: 1, max: 5 * 1024 ** 4 },
    default: 5 * 1024 ** 3,
    description: 'Largest file in bytes (a tenant may override: settings.storageMaxFileSize)',
  },
  storageQuotaBytes: {
    env: 'PLEXICA_STORAGE_QUOTA',
    kind: { type: 'int', min: 0, max: Number.MAX_SAFE_INTEGER },
    default: 0,
    description:
      'Bytes each tenant may store, 0 = unlimited (a tenant may override: settings.storageQuotaBytes)',
  },
  storageSignedUrlMaxSeconds: {
    env: 'PLEXICA_STORAGE_SIGNED_URL_MAX_TTL',
    kind: { type: 'int', min: 1, max: 604_800 },
    default: 604_800,
    description: 'Longest lifetime of a signed URL in seconds (S3 allows 7 days)',
  },
  s3Endpoint: {
    env: 'PLEXICA_S3_ENDPOINT',
    kind: { type: 'url', protocols: ['http:', 'https:'] },
    description: 'S3 endpoint (MinIO, R2, …); unset = AWS for the region',
  },
  s3Region: {
    env: 'PLEXICA_S3_REGION',
    kind: { type: 'string' },
    default: 'us-east-1',
    description: 'S3 region',
  },
  s3AccessKeyId: {
    env: 'PLEXICA_S3_ACCESS_KEY_ID',
    kind: { type: 'string' },
    description: 'S3 access key; unset = the AWS default credential chain',
  },
  s3SecretAccessKey: {
    env: 'PLEXICA_S3_SECRET_ACCESS_KEY',
    kind: { type: 'string' },
    description: 'S3 secret key',
  },
  s3ForcePathStyle: {
    env: 'PLEXICA_S3_FORCE_PATH_STYLE',
    kind: { type: 'bool' },
    default: false,
    description: 'Path-style S3 URLs (MinIO needs true)',
  },
  s3BucketMode: {
    env: 'PLEXICA_S3_BUCKET_MODE',
    kind: { type: 'enum', values: S3_BUCKET_MODES },
    default: 'bucket',
    description: 'bucket: a bucket tenant-{id} per tenant; prefix: prefix tenant-{id}/ in PLEXICA_S3_BUCKET',
  },
  s3Bucket: {
    env: 'PLEXICA_S3_BUCKET',
    kind: { type: 'string' },
    description: 'The shared bucket in prefix mode',
  },
  s3BucketPrefix: {
    env: 'PLEXICA_S3_BUCKET_PREFIX',
    kind: { type: 'string' },
    description: 'Put before tenant-{id} in bucket names (bucket names are global on AWS), e.g. acme-prod-',
  },
  jobsDriver: {
    env: 'PLEXICA_JOBS_DRIVER',
    kind: { type: 'enum', values: JOBS_DRIVERS },
    default: 'postgres',
    description:
      'Job engine: pg-boss in the database (embedded or PostgreSQL), or BullMQ on PLEXICA_REDIS_URL',
  },
  jobsRedisPrefix: {
    env: 'PLEXICA_JOBS_REDIS_PREFIX',
    kind: { type: 'string' },
    default: 'plexica',
    description: 'Key prefix of the BullMQ queues in Redis',
  },
  jobsLeaseSeconds: {
    env: 'PLEXICA_JOBS_LEASE_SECONDS',
    // pg-boss heartbeats no faster than every 5 s (half of a 10 s lease)
    kind: { type: 'int', min: 10, max: 3600 },
    default: 30,
    description: 'A worker that stops heartbeating for this long (crashed) loses its job to another worker',
  },
  jobsPollIntervalSeconds: {
    env: 'PLEXICA_JOBS_POLL_INTERVAL',
    kind: { type: 'int', min: 1, max: 60 },
    default: 2,
    description: 'How often idle workers look for jobs enqueued by other processes',
  },
  jobsRetryDelaySeconds: {
    env: 'PLEXICA_JOBS_RETRY_DELAY',
    kind: { type: 'int', min: 1, max: 3600 },
    default: 2,
    description: 'First retry delay of a failed job; doubles per attempt, with jitter, up to an hour',
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
    case 'trust-proxy':
      return parseTrustProxy(text, shown);
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

// proxy-addr's named ranges, as Fastify's trustProxy accepts them
const PROXY_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** An address or CIDR as Fastify's trustProxy (proxy-addr) takes it, else why not. */
function proxyEntryProblem(entry: string): string | undefined {
  if (PROXY_RANGES.has(entry)) return undefined;
  const [address = '', prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return `"${entry}" is not an IP address or CIDR`;
  if (prefix === undefined) return undefined;
  const bits = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > bits)
    return `"${entry}" has a prefix length outside 0–${bits}`;
  return undefined;
}

/**
 * PLEXICA_TRUST_PROXY: a hop count or a list of proxy addresses. `false` is
 * kept as 0 for old configurations; `true` is refused, since it trusted every
 * hop and so let any client pick its own address (issue 9 item 5).
 */
function parseTrustProxy(text: unknown, shown: string): { value?: unknown; problem?: string } {
  const hint =
    'give the number of proxies in front of Plexica (e.g. 1) or a comma-separated list of their addresses/CIDRs';
  if (text === false || text === 'false') return { value: 0 };
  if (text === true || text === 'true')
    return {
      problem: `true (trust every hop) is no longer accepted: any client could choose its address; ${hint}`,
    };
  if (typeof text === 'number' || (typeof text === 'string' && /^\d+$/.test(text))) {
    const hops = Number(text);
    if (!Number.isInteger(hops) || hops < 0 || hops > 32)
      return { problem: `must be a hop count from 0 to 32 (got ${shown})` };
    return { value: hops };
  }
  const entries = Array.isArray(text)
    ? text.map((e) => String(e).trim())
    : typeof text === 'string'
      ? text.split(',').map((e) => e.trim())
      : undefined;
  if (!entries) return { problem: `${hint} (got ${shown})` };
  const list = entries.filter(Boolean);
  const problems = list.map(proxyEntryProblem).filter((p) => p !== undefined);
  if (problems.length > 0) return { problem: `${problems.join('; ')}: ${hint}` };
  return { value: list.length > 0 ? list : 0 };
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
  knownEnv.add('PLEXICA_TOKEN'); // the CLI's credential for `plexica jobs`
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
  if (config.storageDriver === 's3') {
    if (config.s3BucketMode === 'prefix' && !config.s3Bucket)
      problems.push('PLEXICA_S3_BUCKET: required when PLEXICA_S3_BUCKET_MODE is prefix');
    if (Boolean(config.s3AccessKeyId) !== Boolean(config.s3SecretAccessKey))
      problems.push('PLEXICA_S3_ACCESS_KEY_ID and PLEXICA_S3_SECRET_ACCESS_KEY: give both or neither');
    const prefix = config.s3BucketPrefix as string | undefined;
    if (prefix && !/^[a-z0-9][a-z0-9.-]{0,18}$/.test(prefix))
      problems.push(
        'PLEXICA_S3_BUCKET_PREFIX: lowercase letters, digits, "." and "-", at most 19 characters',
      );
  }
  if (config.jobsDriver === 'redis' && !config.redisUrl)
    problems.push('PLEXICA_REDIS_URL: required when PLEXICA_JOBS_DRIVER is redis');
  for (const entry of config.outboundAllowHosts as string[]) {
    const problem = allowHostProblem(entry);
    if (problem) problems.push(`PLEXICA_OUTBOUND_ALLOW_HOSTS: ${problem}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const result = config as unknown as PlexicaConfig;
  result.dataDir = path.resolve(result.dataDir);
  return result;
}
