import mime from 'mime-types';
import { PlexicaError } from '../../infra/errors.js';
import { baseName } from './paths.js';
import type { FileInfo } from './service.js';

/** Media types of stored files: what an upload may declare, and how a file is served. */

const CONTENT_TYPE =
  /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+(\s*;\s*[a-z0-9!#$&^_.+-]+=("[^"\\\r\n]*"|[a-z0-9!#$&^_.+-]+))*$/i;
export const checkMediaType = (
  given: string,
  field: string,
  code: 'PLX_STORAGE_UPLOAD_INVALID' | 'PLX_VALIDATION',
): string => {
  if (given.length > 255 || !CONTENT_TYPE.test(given)) {
    throw new PlexicaError(code, {
      detail: `"${given.slice(0, 100)}" is not a media type`,
      errors: [{ field, message: 'must be a media type like image/png' }],
    });
  }
  return given;
};
/** Media types compare without case and without the spaces around parameters. */
export const sameMediaType = (a: string | undefined, b: string) =>
  a !== undefined && a.toLowerCase().replace(/\s+/g, '') === b.toLowerCase().replace(/\s+/g, '');
const INLINE_TYPES = /^(image\/(png|jpeg|gif|webp|avif)|video\/|audio\/|application\/pdf$|text\/plain)/;

/** The stored type of an upload: the one given (checked), else from the path's extension. */
export const contentTypeFor = (path: string, given: string | undefined): string => {
  if (given !== undefined && given !== '' && given !== 'application/octet-stream') {
    return checkMediaType(given, 'contentType', 'PLX_STORAGE_UPLOAD_INVALID');
  }
  return mime.lookup(path) || 'application/octet-stream';
};

/** How a file is served: `inline` only for types a browser cannot run as our origin. */
export const contentDisposition = (file: Pick<FileInfo, 'path' | 'contentType'>): string => {
  const name = baseName(file.path);
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  const kind = INLINE_TYPES.test(file.contentType) ? 'inline' : 'attachment';
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
};
