import type { ConfigFragment } from '../options.js';

export const SIGNALS_DRIVERS = ['auto', 'memory', 'postgres', 'redis'] as const;
export type SignalsDriverSetting = (typeof SIGNALS_DRIVERS)[number];

/** Settings of the cluster signal channel (a part of the kernel's settings). */
export interface SignalsConfig {
  signalsDriver: SignalsDriverSetting;
  signalsPrefix: string;
}

export const signalsOptions: ConfigFragment<SignalsConfig>['options'] = {
  signalsDriver: {
    env: 'PLEXICA_SIGNALS_DRIVER',
    kind: { type: 'enum', values: SIGNALS_DRIVERS },
    default: 'auto',
    description:
      'Cluster signal channel (cache invalidation across instances): memory (one process), postgres (LISTEN/NOTIFY, needs PLEXICA_DATABASE_URL), redis (pub/sub, needs PLEXICA_REDIS_URL); auto = redis when PLEXICA_REDIS_URL is set, else postgres when PLEXICA_DATABASE_URL is set, else memory',
  },
  signalsPrefix: {
    env: 'PLEXICA_SIGNALS_PREFIX',
    kind: { type: 'string' },
    default: 'plexica',
    description:
      'Name of the channel the instances of one deployment share (Redis channel `<prefix>:signals`, PostgreSQL channel `<prefix>_signals`); lowercase letters, digits and _',
  },
};

/** Problems of the signal settings given the engines configured. */
export function signalsProblems(
  config: SignalsConfig & { databaseUrl: string | undefined; redisUrl: string | undefined },
): string[] {
  const problems: string[] = [];
  if (!/^[a-z0-9_]{1,40}$/.test(config.signalsPrefix))
    problems.push('PLEXICA_SIGNALS_PREFIX: lowercase letters, digits and _, at most 40 characters');
  if (config.signalsDriver === 'postgres' && !config.databaseUrl)
    problems.push(
      'PLEXICA_SIGNALS_DRIVER: postgres needs PLEXICA_DATABASE_URL (the embedded database serves one process: use memory)',
    );
  if (config.signalsDriver === 'redis' && !config.redisUrl)
    problems.push('PLEXICA_SIGNALS_DRIVER: redis needs PLEXICA_REDIS_URL');
  return problems;
}

/** The driver `auto` stands for with these engines. */
export function resolveSignalsDriver(
  config: SignalsConfig & { databaseUrl: string | undefined; redisUrl: string | undefined },
): Exclude<SignalsDriverSetting, 'auto'> {
  if (config.signalsDriver !== 'auto') return config.signalsDriver;
  if (config.redisUrl) return 'redis';
  if (config.databaseUrl) return 'postgres';
  return 'memory';
}
