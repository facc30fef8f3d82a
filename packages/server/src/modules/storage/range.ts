import parseRange from 'range-parser';
import { PlexicaError } from '../../infra/errors.js';
import type { ByteRange } from './drivers/blob-store.js';

/**
 * The one byte range a `Range` header asks for, or undefined to send the
 * whole file: a malformed header or several ranges are ignored, as RFC 9110
 * allows. A range wholly past the end is a 416 that carries the size.
 */
export function rangeOf(header: string | undefined, size: number): ByteRange | undefined {
  if (!header) return undefined;
  const ranges = parseRange(size, header, { combine: true });
  if (ranges === -2) return undefined;
  if (ranges === -1) {
    throw new PlexicaError('PLX_STORAGE_RANGE_NOT_SATISFIABLE', {
      detail: `the file has ${size} bytes`,
      extra: { size },
    });
  }
  if (ranges.type !== 'bytes' || ranges.length !== 1) return undefined;
  const [range] = ranges;
  return range && { start: range.start, end: range.end };
}
