import { isIP } from 'node:net';
import { allowHostProblem } from '../infra/net/outbound-guard.js';
import type { ConfigFragment, ParsedOption } from '../infra/options.js';
import { type SignalsConfig, signalsOptions, signalsProblems } from '../infra/signals/config.js';
import { PROCESS_ROLES } from '../module.js';

/** Roles one `plexica` process can play; `all` runs every role in one process. */
export const ROLES = ['all', ...PROCESS_ROLES] as const;
export type Role = (typeof ROLES)[number];
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;

/** Settings of the program itself: HTTP, database, Redis, roles, limits shared by every module. */
export interface KernelConfig extends SignalsConfig {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
  databasePoolSize: number;
  redisUrl: string | undefined;
  role: Role;
  logLevel: (typeof LOG_LEVELS)[number];
  logFormat: (typeof LOG_FORMATS)[number];
  /** When set, GET /metrics needs `Authorization: Bearer <it>`. */
  metricsToken: string | undefined;
  bodyLimit: number;
  corsOrigins: string[];
  /** Proxies in front of the server: a hop count (0 = none) or their addresses and CIDRs. */
  trustProxy: number | string[];
  rateLimitUser: number;
  rateLimitTenant: number;
  rateLimitAnonymous: number;
  rateLimitWindowMs: number;
  migrateOnStart: boolean;
  shutdownTimeoutMs: number;
  publicUrl: string | undefined;
  publicHosts: string[];
  /** Hosts (`host` or `host:port`) outbound requests may reach over http and on private addresses. */
  outboundAllowHosts: string[];
}

/** Every setting of this fragment, its environment variable, type and default. */
export const kernelOptions: ConfigFragment<KernelConfig>['options'] = {
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
  logFormat: {
    env: 'PLEXICA_LOG_FORMAT',
    kind: { type: 'enum', values: LOG_FORMATS },
    default: 'auto',
    description:
      'Log lines: `json` (one object per line), `pretty` (for people), `auto` = pretty when stdout is a terminal',
  },
  metricsToken: {
    env: 'PLEXICA_METRICS_TOKEN',
    kind: { type: 'string' },
    description:
      'When set, `GET /metrics` needs `Authorization: Bearer <token>` (401 otherwise); unset = open',
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
    kind: { type: 'custom', label: 'hop count or list', parse: parseTrustProxy },
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
  ...signalsOptions,
};

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
function parseTrustProxy(text: unknown, shown: string): ParsedOption {
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

/** The kernel's settings and the checks across them. */
export const kernelConfig: ConfigFragment<KernelConfig> = {
  options: kernelOptions,
  validate(config) {
    return [
      ...config.outboundAllowHosts.flatMap((entry) => {
        const problem = allowHostProblem(entry);
        return problem ? [`PLEXICA_OUTBOUND_ALLOW_HOSTS: ${problem}`] : [];
      }),
      ...signalsProblems(config),
    ];
  },
};
