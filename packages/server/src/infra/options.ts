/**
 * The configuration mechanism: every setting is an `Option` (its environment
 * variable, type, default and meaning) in the fragment of the module that owns
 * it (`modules/<name>/config.ts`); `config/index.ts` composes the fragments,
 * refuses unknown keys, and the README table is checked against them.
 */

export type OptionKind =
  | { type: 'string' }
  | { type: 'url'; protocols: string[] }
  | { type: 'int'; min: number; max: number }
  | { type: 'bool' }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'list' }
  /** A value with a grammar of its own; `label` is what the README's type column says. */
  | { type: 'custom'; label: string; parse(text: unknown, shown: string): ParsedOption };

export interface Option {
  env: string;
  kind: OptionKind;
  default?: unknown;
  description: string;
}

export interface ParsedOption {
  value?: unknown;
  problem?: string;
}

/** A module's settings: one `Option` per key of its config type, and the checks across them. */
export interface ConfigFragment<C> {
  options: { [K in keyof C]-?: Option };
  /** Problems of values that only make sense together (e.g. a driver's required settings). */
  validate?(config: C, kernel: { redisUrl: string | undefined }): string[];
}

/** Any module's fragment, as the composer holds them side by side. */
export interface AnyConfigFragment {
  options: Record<string, Option>;
  validate?(config: never, kernel: { redisUrl: string | undefined }): string[];
}

/** Thrown at boot; the message names every bad key. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** Parses one raw value (environment string, JSON file value or override) for `option`. */
export function parseOption(option: Option, raw: unknown): ParsedOption {
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
    case 'custom':
      return kind.parse(text, shown);
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

/** The README configuration table's type column for `kind`. */
export function describeKind(kind: OptionKind): string {
  switch (kind.type) {
    case 'int':
      return `integer ${kind.min}–${kind.max}`;
    case 'enum':
      return `one of ${kind.values.join(', ')}`;
    case 'custom':
      return kind.label;
    default:
      return kind.type;
  }
}

/** The README configuration table's default column for `option`. */
export function describeDefault(option: Option): string {
  if (option.default === undefined) return '—';
  if (Array.isArray(option.default))
    return option.default.length === 0 ? '(empty)' : option.default.join(',');
  return String(option.default);
}

/** The README table row of one option, as the config docs test expects it. */
export const readmeRow = (option: Option): string =>
  `| \`${option.env}\` | ${describeKind(option.kind)} | \`${describeDefault(option)}\` | ${option.description} |`;
