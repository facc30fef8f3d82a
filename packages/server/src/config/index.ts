import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  type AnyConfigFragment,
  ConfigError,
  type ConfigFragment,
  type Option,
  parseOption,
} from '../infra/options.js';
import type { ModuleDefinition } from '../module.js';
import { MODULES } from '../modules/index.js';
import { type KernelConfig, kernelConfig } from './kernel.js';
import { type ReliabilityConfig, reliabilityConfig } from './reliability.js';

export { ConfigError } from '../infra/options.js';
export { type KernelConfig, LOG_LEVELS, ROLES, type Role } from './kernel.js';
export type { ReliabilityConfig } from './reliability.js';

// a module without settings is a ModuleDefinition<unknown>: it adds nothing
type ConfigOf<M> = M extends ModuleDefinition<infer C> ? (unknown extends C ? never : C) : never;
type Intersection<U> = (U extends unknown ? (u: U) => void : never) extends (i: infer I) => void ? I : never;

/**
 * Every setting of the program: the kernel's and each module's fragment, flat
 * as the environment is (a module receives its own slice, see `sliceOf`).
 */
export type PlexicaConfig = KernelConfig &
  ReliabilityConfig &
  Intersection<ConfigOf<(typeof MODULES)[number]>>;

/** The kernel's fragments, then each module's in module order (the README table's order). */
const FRAGMENTS: AnyConfigFragment[] = [
  kernelConfig,
  reliabilityConfig as AnyConfigFragment,
  ...MODULES.flatMap((m): AnyConfigFragment[] => (m.config ? [m.config as AnyConfigFragment] : [])),
];

function compose(fragments: AnyConfigFragment[]): Record<string, Option> {
  const options: Record<string, Option> = {};
  for (const fragment of fragments) {
    for (const [key, option] of Object.entries(fragment.options)) {
      // two modules claiming one key (or one variable) is a programming error, caught by any test
      if (key in options || Object.values(options).some((o) => o.env === option.env))
        throw new Error(`configuration key ${key} (${option.env}) is declared twice`);
      options[key] = option;
    }
  }
  return options;
}

/**
 * Every configuration key, its environment variable, type and default, from
 * all fragments. The README configuration table is checked against it.
 */
export const OPTIONS = compose(FRAGMENTS) as Record<keyof PlexicaConfig, Option>;

/** Variables that are not settings but are read by the CLI. */
const CLI_VARIABLES = ['PLEXICA_CONFIG', 'PLEXICA_TOKEN'];

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
  const knownEnv = new Set([...Object.values(OPTIONS).map((o) => o.env), ...CLI_VARIABLES]);
  for (const name of Object.keys(env)) {
    if (name.startsWith('PLEXICA_') && !knownEnv.has(name)) {
      const near = closest(name, knownEnv);
      problems.push(`${name}: unknown setting${near ? ` (did you mean ${near}?)` : ''}`);
    }
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
    const { value, problem } = parseOption(option, source.raw);
    if (problem) problems.push(`${source.name}: ${problem}`);
    else config[key] = value;
  }
  if (problems.length === 0) {
    const typed = config as unknown as PlexicaConfig;
    for (const fragment of FRAGMENTS) problems.push(...(fragment.validate?.(typed as never, typed) ?? []));
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const result = config as unknown as PlexicaConfig;
  result.dataDir = path.resolve(result.dataDir);
  return result;
}

/** The known name within two edits of `name` (a typo such as PLEXICA_PROT), if any. */
function closest(name: string, known: Iterable<string>): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(name, candidate);
    if (distance <= 2 && (!best || distance < best.distance)) best = { name: candidate, distance };
  }
  return best?.name;
}

/** Levenshtein distance with adjacent transpositions counted as one edit (PROT → PORT). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        value = Math.min(value, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = value;
    }
  }
  return d[a.length]![b.length]!;
}

/** A module's own settings out of the whole configuration: what its front file receives. */
export function sliceOf<C>(config: PlexicaConfig, module: { config?: ConfigFragment<C> }): C {
  const slice: Record<string, unknown> = {};
  for (const key of Object.keys(module.config?.options ?? {}))
    slice[key] = (config as unknown as Record<string, unknown>)[key];
  return slice as C;
}
