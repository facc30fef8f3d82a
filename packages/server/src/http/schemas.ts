import { type TSchema, Type } from '@sinclair/typebox';
import { JSON_BOUNDS_KEYWORD, type JsonBounds } from './bounded-json.js';

/** Shared route schema pieces. */
export const Uuid = Type.String({ format: 'uuid' });
export const IdParams = Type.Object({ id: Uuid });
export const Paging = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 })),
};

/** The page a list request asked for (validation fills the defaults; this keeps the types honest). */
export const pageOf = (query: { limit?: number; offset?: number }) => ({
  limit: query.limit ?? 20,
  offset: query.offset ?? 0,
});
export const Problem = Type.Ref('Problem');

/** Response map: the success schema plus problem documents for errors. */
export const responses = <T extends Record<number, TSchema>>(ok: T) => ({
  ...ok,
  '4xx': Problem,
  '5xx': Problem,
});

export const Page = <T extends TSchema>(item: T) =>
  Type.Object({
    items: Type.Array(item),
    total: Type.Integer(),
    limit: Type.Integer(),
    offset: Type.Integer(),
  });

/** Bounds of free-form JSON a client may store (job and schedule `data`). */
export const JSON_DATA_BOUNDS: JsonBounds = { maxDepth: 64, maxBytes: 64 * 1024 };

/**
 * Any JSON value, bounded in depth and size before it reaches a jsonb column;
 * the NUL/surrogate check of every string is the server's preValidation hook.
 */
export const JsonData = (options: { description?: string } = {}) =>
  Type.Unknown({
    ...options,
    [JSON_BOUNDS_KEYWORD]: JSON_DATA_BOUNDS,
  });

/** An upload body, for `documentedBody`: any media type, the file's bytes. */
export const RAW_FILE_BODY = { '*/*': { type: 'string', format: 'binary', description: "the file's bytes" } };
/** The multipart form of an upload, for `documentedBody` (Swagger UI shows a file picker). */
export const MULTIPART_FILE_BODY = {
  'multipart/form-data': {
    type: 'object',
    required: ['file'],
    properties: {
      path: { type: 'string', description: 'where to store it (before the file part), or ?path=' },
      file: { type: 'string', format: 'binary' },
    },
  },
  'application/octet-stream': { type: 'string', format: 'binary', description: 'the raw body, with ?path=' },
};
