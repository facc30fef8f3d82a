import type { FastifyRequest } from 'fastify';
import { type FieldError, PlexicaError } from '../infra/errors.js';

/**
 * What PostgreSQL cannot hold: `text` and `jsonb` refuse U+0000 (a 500 from
 * the driver, issue 9 item 7), and an unpaired UTF-16 surrogate is a jsonb
 * syntax error or silently becomes U+FFFD in `text`. With the `u` flag a
 * well-formed surrogate pair is one code point, so only lone halves match.
 */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;
const unstorable = (text: string): boolean => text.includes('\u0000') || LONE_SURROGATE.test(text);

const describe = (text: string): string =>
  text.includes('\u0000')
    ? 'contains a NUL character, which cannot be stored'
    : 'contains an unpaired UTF-16 surrogate, which cannot be stored';

interface Frame {
  value: unknown;
  parent: Frame | undefined;
  key: string;
}

// what JSON.parse and the query parser make: plain objects, or (fast-querystring's)
// an object whose prototype has a null prototype; a stream or buffer is neither
const isPlainObject = (value: unknown): value is Record<string, unknown> => {
  if (value === null || typeof value !== 'object') return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null || Object.getPrototypeOf(proto) === null;
};

// the path is built only for the one frame reported, so a deep input costs no more than a wide one
const pathOf = (frame: Frame): string => {
  const keys: string[] = [];
  for (let at: Frame | undefined = frame; at; at = at.parent) keys.push(at.key);
  return keys.reverse().join('.');
};

/**
 * The first string (or object key) in `root` that PostgreSQL cannot store,
 * named as a dotted field path under `rootField` (`body.data.items.3`), as
 * Ajv's errors are. Walks with its own stack, never by recursion: a body
 * nested thousands of levels deep must be an answer, not a stack overflow.
 * Only what a JSON or query parser produces is walked (strings, arrays, plain
 * objects); streams and buffers (raw uploads) are not.
 *
 * @example findUnstorable({ email: 'a\u0000' }, 'querystring') // { field: 'querystring.email', … }
 */
export function findUnstorable(
  root: unknown,
  rootField: string,
  exempt: ReadonlySet<string> = new Set(),
): FieldError | undefined {
  const stack: Frame[] = [{ value: root, parent: undefined, key: rootField }];
  for (let frame = stack.pop(); frame; frame = stack.pop()) {
    const { value } = frame;
    if (typeof value === 'string') {
      if (unstorable(value)) return { field: pathOf(frame), message: describe(value) };
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i -= 1)
        stack.push({ value: value[i], parent: frame, key: String(i) });
    } else if (isPlainObject(value)) {
      const keys = Object.keys(value);
      for (let i = keys.length - 1; i >= 0; i -= 1) {
        const key = keys[i] as string;
        // never echo the key itself: it is what cannot be shown
        if (unstorable(key)) return { field: pathOf(frame), message: `has a key that ${describe(key)}` };
        if (frame.parent === undefined && exempt.has(`${rootField}.${key}`)) continue;
        stack.push({ value: value[key], parent: frame, key });
      }
    }
  }
  return undefined;
}

const PARTS = ['querystring', 'params', 'body'] as const;
// a wildcard parameter is the rest of the URL path, which its route must parse
// anyway (storage paths) and refuses with its own, more precise error
const WILDCARD = 'params.*';

/**
 * preValidation hook of every route: a query, path or body string PostgreSQL
 * cannot store is a 400 naming the field, before validation and before any
 * handler. Routes that check a field themselves with a more precise error
 * (a storage path in the query) list it in `config.rawStrings`; the wildcard
 * parameter is always left to its route.
 */
export async function refuseUnstorableInput(request: FastifyRequest): Promise<void> {
  const exempt = new Set([WILDCARD, ...(request.routeOptions.config?.rawStrings ?? [])]);
  const values = { querystring: request.query, params: request.params, body: request.body };
  for (const part of PARTS) {
    const problem = findUnstorable(values[part], part, exempt);
    if (problem) {
      throw new PlexicaError('PLX_VALIDATION', {
        detail: `${problem.field}: ${problem.message}`,
        errors: [problem],
      });
    }
  }
}
