import { PlexicaError } from '../../infra/errors.js';

/** S3's key limit, and what every filesystem allows for one name. */
export const MAX_PATH_BYTES = 1024;
export const MAX_SEGMENT_BYTES = 255;

// after URL decoding these can only come from double encoding: `%252e%252e%252f` → `%2e%2e%2f`
const ENCODED_SEPARATOR_OR_DOT = /%(2e|2f|5c|00)/i;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
const CONTROL = /[\u0000-\u001f\u007f]/;

const refuse = (field: string, message: string): never => {
  throw new PlexicaError('PLX_STORAGE_PATH_INVALID', {
    detail: `${field} ${message}`,
    errors: [{ field, message }],
  });
};

function check(value: unknown, field: string, kind: 'file' | 'prefix'): string {
  if (typeof value !== 'string') return refuse(field, 'must be a string');
  if (kind === 'file' && value === '') return refuse(field, 'must not be empty');
  // one spelling per name: "é" typed composed or decomposed is the same file
  const path = value.normalize('NFC');
  if (Buffer.byteLength(path) > MAX_PATH_BYTES)
    return refuse(field, `is longer than ${MAX_PATH_BYTES} bytes`);
  if (path.includes('\0')) return refuse(field, 'contains a NUL byte');
  if (CONTROL.test(path)) return refuse(field, 'contains a control character');
  if (path.includes('\\')) return refuse(field, 'contains a backslash; use "/" between folders');
  if (path.startsWith('/')) return refuse(field, 'is absolute; paths are relative to the tenant');
  if (/^[A-Za-z]:/.test(path)) return refuse(field, 'starts with a drive letter');
  if (ENCODED_SEPARATOR_OR_DOT.test(path)) return refuse(field, 'contains an encoded "/", "\\", "." or NUL');
  const segments = path.split('/');
  // a prefix may end with "/" (a folder); a file may not
  if (kind === 'prefix' && segments.at(-1) === '') segments.pop();
  for (const segment of segments) {
    if (segment === '' && path !== '') return refuse(field, 'has an empty segment ("//" or a trailing "/")');
    if (segment === '.' || segment === '..') return refuse(field, `has a "${segment}" segment`);
    if (Buffer.byteLength(segment) > MAX_SEGMENT_BYTES)
      return refuse(field, `has a segment longer than ${MAX_SEGMENT_BYTES} bytes`);
  }
  return path;
}

/**
 * A file path as stored: relative, "/"-separated, NFC, no "." or ".." segments,
 * no control characters, no encoded separators (seed 000 edge case 8).
 * @throws PLX_STORAGE_PATH_INVALID naming what is wrong
 */
export const normalizePath = (value: unknown, field = 'path'): string => check(value, field, 'file');

/** A list prefix: the same rules, but it may be empty or end with "/". */
export const normalizePrefix = (value: unknown, field = 'prefix'): string => check(value, field, 'prefix');

/** The smallest string greater than every string that starts with `prefix` (code point order). */
export function prefixUpperBound(prefix: string): string | undefined {
  const points = [...prefix];
  while (points.length > 0) {
    const last = points.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      let next = last + 1;
      if (next >= 0xd800 && next <= 0xdfff) next = 0xe000; // skip surrogates
      return points.join('') + String.fromCodePoint(next);
    }
  }
  return undefined;
}

/** The last segment, for Content-Disposition. */
export const baseName = (path: string): string => path.slice(path.lastIndexOf('/') + 1);
