import type { Readable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../../context.js';
import { PlexicaError } from '../../../infra/errors.js';
import type { FileInfo, ReadResult, StorageService } from '../service.js';

/** What the storage routes share: the file schema, streaming a file in and out, and the replace rule. */

export const FileSchema = Type.Object(
  {
    path: Type.String(),
    size: Type.Integer({ minimum: 0 }),
    contentType: Type.String(),
    etag: Type.String(),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'File' },
);
export const FileRef = Type.Ref('File');
export const WildcardPath = Type.Object({
  '*': Type.String({ description: 'File path, "/" between folders (documented as {path})' }),
});
export const Overwrite = Type.Optional(
  Type.Boolean({ default: true, description: 'false: refuse with 409 when a file exists at the path' }),
);
export const Binary = (description: string) => ({
  description,
  content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
});

/** Response headers that make a stored file safe to serve from the API's own origin. */
export function sendFile(reply: FastifyReply, result: ReadResult, disposition: string): FastifyReply {
  const { file } = result;
  reply
    .header('etag', file.etag)
    .header('last-modified', new Date(file.updatedAt).toUTCString())
    .header('accept-ranges', 'bytes')
    .header('cache-control', 'private, no-cache')
    // an uploaded HTML or SVG file must never run as our origin
    .header('content-security-policy', "sandbox; default-src 'none'")
    .header('x-content-type-options', 'nosniff');
  if (result.notModified) return reply.code(304).send();
  reply.header('content-type', file.contentType).header('content-disposition', disposition);
  if (result.range) {
    const { start, end } = result.range;
    reply
      .code(206)
      .header('content-range', `bytes ${start}-${end}/${file.size}`)
      .header('content-length', String(end - start + 1));
  } else {
    reply.code(200).header('content-length', String(file.size));
  }
  return reply.send(result.body);
}

export const headerOf = (request: FastifyRequest, name: string) => {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
};

/** HEAD answers from the metadata: the file is not opened just to be thrown away. */
export const readOptions = (request: FastifyRequest) => ({
  range: headerOf(request, 'range'),
  ifNoneMatch: headerOf(request, 'if-none-match'),
  open: request.method !== 'HEAD',
});

export const declaredSize = (request: FastifyRequest) => {
  const length = headerOf(request, 'content-length');
  return length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined;
};

/**
 * Runs an upload; if it fails before the client finished sending, the
 * connection is closed after the error instead of reading the rest of a body
 * nobody will store.
 */
export async function receiving<T>(
  request: FastifyRequest,
  reply: FastifyReply,
  upload: () => Promise<T>,
): Promise<T> {
  try {
    return await upload();
  } catch (err) {
    if (!request.raw.readableEnded) reply.header('connection', 'close');
    throw err;
  }
}

/** Whether the caller may destroy file contents: delete, move away, or replace. */
export const mayDelete = (ctx: RequestContext) =>
  ctx.principal?.permissions.has('storage:file:delete') === true;

/** POST /upload: multipart/form-data (a `path` field, then the file) or the raw body with `?path=`. */
export async function receiveUpload(
  request: FastifyRequest,
  storage: StorageService,
  query: { path?: string; overwrite?: boolean },
): Promise<FileInfo> {
  const mayReplace = mayDelete(request.ctx);
  if (!request.isMultipart()) {
    if (query.path === undefined) {
      throw new PlexicaError('PLX_STORAGE_UPLOAD_INVALID', {
        detail: 'a raw upload names its path in the query: ?path=…',
        errors: [{ field: 'querystring.path', message: 'is required for a raw-body upload' }],
      });
    }
    return storage.upload(request.ctx, query.path, request.body as Readable, {
      contentType: headerOf(request, 'content-type'),
      declaredSize: declaredSize(request),
      overwrite: query.overwrite,
      mayReplace,
    });
  }
  let path = query.path;
  let overwrite = query.overwrite;
  for await (const part of request.parts()) {
    if (part.type === 'field') {
      if (part.fieldname === 'path') path = String(part.value);
      else if (part.fieldname === 'overwrite') overwrite = String(part.value) !== 'false';
      continue;
    }
    if (path === undefined) {
      throw new PlexicaError('PLX_STORAGE_UPLOAD_INVALID', {
        detail: 'send the "path" field before the file part, or ?path= in the query',
        errors: [{ field: 'path', message: 'is required' }],
      });
    }
    return storage.upload(request.ctx, path, part.file, {
      contentType: part.mimetype,
      overwrite,
      mayReplace,
    });
  }
  throw new PlexicaError('PLX_STORAGE_UPLOAD_INVALID', {
    detail: 'the multipart body has no file part',
    errors: [{ field: 'file', message: 'is required' }],
  });
}

export const FileResponses = {
  200: Binary('The file'),
  206: Binary('The requested range'),
  '4xx': { $ref: 'Problem' },
};
export const tags = ['storage'];
