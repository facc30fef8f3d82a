import type { Readable } from 'node:stream';
import multipart from '@fastify/multipart';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RequestContext } from '../../context.js';
import { responses } from '../../http/schemas.js';
import type { Server } from '../../http/types.js';
import { PlexicaError } from '../../infra/errors.js';
import type { PermissionRegistry } from '../../permissions.js';
import { normalizePath } from './paths.js';
import type { FileInfo, ReadResult, StorageService } from './service.js';
import type { SignedUrlGrant } from './signing.js';

const FileSchema = Type.Object(
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
const FileRef = Type.Ref('File');
const WildcardPath = Type.Object({
  '*': Type.String({ description: 'File path, "/" between folders (documented as {path})' }),
});
const Overwrite = Type.Optional(
  Type.Boolean({ default: true, description: 'false: refuse with 409 when a file exists at the path' }),
);
const Binary = (description: string) => ({
  description,
  content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
});

/** Response headers that make a stored file safe to serve from the API's own origin. */
function sendFile(reply: FastifyReply, result: ReadResult, disposition: string): FastifyReply {
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

const headerOf = (request: FastifyRequest, name: string) => {
  const value = request.headers[name];
  return typeof value === 'string' ? value : undefined;
};

/** HEAD answers from the metadata: the file is not opened just to be thrown away. */
const readOptions = (request: FastifyRequest) => ({
  range: headerOf(request, 'range'),
  ifNoneMatch: headerOf(request, 'if-none-match'),
  open: request.method !== 'HEAD',
});

const declaredSize = (request: FastifyRequest) => {
  const length = headerOf(request, 'content-length');
  return length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined;
};

/**
 * Runs an upload; if it fails before the client finished sending, the
 * connection is closed after the error instead of reading the rest of a body
 * nobody will store.
 */
async function receiving<T>(
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
const mayDelete = (ctx: RequestContext) => ctx.principal?.permissions.has('storage:file:delete') === true;

/** The settings a signed link's origin comes from. */
export interface PublicOrigin {
  publicUrl: string | undefined;
  publicHosts: string[];
}

/**
 * The origin a signed link is built on: the configured public URL, else the
 * request's Host when the operator listed it, else none (the link stays a
 * path): a client-written Host header never ends up in a link someone is sent.
 */
export function publicOrigin(
  config: PublicOrigin,
  request: { protocol: string; host: string },
): string | undefined {
  if (config.publicUrl) return config.publicUrl;
  const host = request.host.toLowerCase();
  return config.publicHosts.some((allowed) => allowed.toLowerCase() === host)
    ? `${request.protocol}://${host}`
    : undefined;
}

/** POST /upload: multipart/form-data (a `path` field, then the file) or the raw body with `?path=`. */
async function receiveUpload(
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

/** Storage routes of seed 000 §8, plus info, copy, move, usage and Plexica-served signed URLs. */
export async function storageRoutes(
  server: Server,
  deps: {
    storage: StorageService;
    registry: PermissionRegistry;
    /** Where signed links point (the kernel's PLEXICA_PUBLIC_URL / PLEXICA_PUBLIC_HOSTS). */
    origin: PublicOrigin;
  },
): Promise<void> {
  const { storage, registry, origin } = deps;
  server.addSchema(FileSchema);
  const tags = ['storage'];

  // one shape for both methods: a GET URL tried as a PUT (or one with a part missing)
  // is a URL nobody signed, not a malformed request
  const SignedQuery = Type.Object(
    {
      tenant: Type.String({ format: 'uuid' }),
      expires: Type.Integer({ minimum: 0 }),
      version: Type.Optional(Type.String({ format: 'uuid', description: 'GET: the blob signed' })),
      id: Type.Optional(Type.String({ format: 'uuid', description: 'PUT: its one use' })),
      type: Type.Optional(
        Type.String({ maxLength: 255, description: 'PUT: the Content-Type the upload must carry' }),
      ),
      overwrite: Type.Optional(Type.Boolean({ description: 'PUT: false = may not replace a file' })),
      signature: Type.String({ pattern: '^[A-Za-z0-9_-]{1,128}$' }),
    },
    { additionalProperties: false },
  );
  type SignedQueryOf = Static<typeof SignedQuery>;

  const unsigned = (): never => {
    throw new PlexicaError('PLX_STORAGE_SIGNATURE_INVALID', {
      detail: 'the URL was not signed for this method, or a part of it is missing',
    });
  };
  const getGrant = (rawPath: string, q: SignedQueryOf) =>
    q.version === undefined || q.id !== undefined || q.type !== undefined || q.overwrite !== undefined
      ? undefined
      : {
          method: 'GET' as const,
          tenantId: q.tenant,
          path: normalizePath(rawPath),
          expires: q.expires,
          version: q.version,
        };
  const putGrant = (rawPath: string, q: SignedQueryOf) =>
    q.id === undefined || q.overwrite === undefined || q.version !== undefined
      ? undefined
      : {
          method: 'PUT' as const,
          tenantId: q.tenant,
          path: normalizePath(rawPath),
          expires: q.expires,
          id: q.id,
          contentType: q.type,
          overwrite: q.overwrite,
        };

  /** The guard's signature check of a signed route: the grant this method's URL claims, verified. */
  const verifying =
    (grantOf: (rawPath: string, q: SignedQueryOf) => SignedUrlGrant | undefined) =>
    (request: FastifyRequest): string => {
      const { params, query } = request as FastifyRequest<{
        Params: { '*': string };
        Querystring: SignedQueryOf;
      }>;
      const grant = grantOf(params['*'], query) ?? unsigned();
      storage.verifySignedUrl(grant, query.signature);
      return grant.tenantId;
    };

  // Routes that take a file body: every content type streams through untouched,
  // multipart/form-data is parsed as a stream, and nothing is buffered.
  await server.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    await scope.register(multipart, {
      limits: { files: 1, fields: 10, fieldSize: 4096, parts: 20, fileSize: Number.MAX_SAFE_INTEGER },
    });
    const s = scope as unknown as Server;

    s.post(
      '/api/v1/storage/upload',
      {
        // the path is checked by normalizePath, whose error is the precise one
        config: { permission: 'storage:file:write', rawStrings: ['querystring.path'] },
        schema: {
          tags,
          summary: 'Upload a file (multipart/form-data with a "path" field, or the raw body with ?path=)',
          description:
            'Replacing an existing file destroys its contents, so it needs storage:file:delete too (403 otherwise).',
          querystring: Type.Object(
            { path: Type.Optional(Type.String({ maxLength: 4096 })), overwrite: Overwrite },
            { additionalProperties: false },
          ),
          response: responses({ 201: FileRef }),
        },
      },
      async (request, reply) => {
        const file = await receiving(request, reply, () => receiveUpload(request, storage, request.query));
        return reply.code(201).send(file);
      },
    );

    s.put(
      '/api/v1/storage/signed/*',
      {
        config: { auth: 'signed', verifySignature: verifying(putGrant) },
        schema: {
          tags,
          summary: 'Upload through a signed URL (no credential; the raw body is the file)',
          description:
            'One upload per URL (410 PLX_STORAGE_SIGNED_URL_USED after it); with the Content-Type it was ' +
            'signed for, if any (415); replacing a file only if its signer could.',
          security: [],
          params: WildcardPath,
          querystring: SignedQuery,
          response: responses({ 201: FileRef }),
        },
      },
      async (request, reply) => {
        const { path, id, expires, contentType, overwrite } =
          putGrant(request.params['*'], request.query) ?? unsigned();
        const file = await receiving(request, reply, () =>
          storage.upload(request.ctx, path, request.body as Readable, {
            contentType: headerOf(request, 'content-type'),
            declaredSize: declaredSize(request),
            mayReplace: overwrite,
            signedUpload: { id, expires, contentType },
          }),
        );
        return reply.code(201).send(file);
      },
    );
  });

  const FileResponses = {
    200: Binary('The file'),
    206: Binary('The requested range'),
    '4xx': { $ref: 'Problem' },
  };
  // GET and an explicit HEAD: Fastify's automatic HEAD would read the whole file to discard it
  for (const method of ['GET', 'HEAD'] as const) {
    const hide = method === 'HEAD';
    server.route({
      method,
      url: '/api/v1/storage/signed/*',
      exposeHeadRoute: false,
      config: { auth: 'signed', verifySignature: verifying(getGrant) },
      schema: {
        tags,
        summary: 'Download through a signed URL (no credential; HEAD too)',
        description:
          'Serves the version that was signed: once the file is replaced, 410 PLX_STORAGE_SIGNED_URL_STALE.',
        security: [],
        hide,
        params: WildcardPath,
        querystring: SignedQuery,
        response: FileResponses,
      },
      handler: async (request, reply) => {
        const { path, version } = getGrant(request.params['*'], request.query) ?? unsigned();
        const result = await storage.read(request.ctx, path, { ...readOptions(request), version });
        return sendFile(reply, result, storage.contentDisposition(result.file));
      },
    });
    server.route({
      method,
      url: '/api/v1/storage/download/*',
      exposeHeadRoute: false,
      config: { permission: 'storage:file:read' },
      schema: {
        tags,
        summary: 'Download a file (Range, If-None-Match and HEAD supported)',
        hide,
        params: WildcardPath,
        response: FileResponses,
      },
      handler: async (request, reply) => {
        const result = await storage.read(request.ctx, request.params['*'], readOptions(request));
        return sendFile(reply, result, storage.contentDisposition(result.file));
      },
    });
  }

  server.get(
    '/api/v1/storage/info/*',
    {
      config: { permission: 'storage:file:read' },
      schema: {
        tags,
        summary: "A file's metadata",
        params: WildcardPath,
        response: responses({ 200: FileRef }),
      },
    },
    async (request) => storage.head(request.ctx, request.params['*']),
  );

  server.delete(
    '/api/v1/storage/*',
    {
      config: { permission: 'storage:file:delete' },
      schema: {
        tags,
        summary: 'Delete a file',
        params: WildcardPath,
        response: responses({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      await storage.delete(request.ctx, request.params['*']);
      return reply.code(204).send(null);
    },
  );

  server.get(
    '/api/v1/storage/list',
    {
      config: { permission: 'storage:file:read' },
      schema: {
        tags,
        summary: 'List files under a prefix, in path order',
        querystring: Type.Object(
          {
            prefix: Type.Optional(Type.String({ maxLength: 4096 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
            cursor: Type.Optional(Type.String({ maxLength: 2048, pattern: '^[A-Za-z0-9_-]+$' })),
          },
          { additionalProperties: false },
        ),
        response: responses({
          200: Type.Object({
            items: Type.Array(FileRef),
            nextCursor: Type.Union([Type.String(), Type.Null()]),
          }),
        }),
      },
    },
    async (request) => storage.list(request.ctx, request.query),
  );

  server.get(
    '/api/v1/storage/signed-url/*',
    {
      config: { permission: 'storage:file:read' },
      schema: {
        tags,
        summary: 'A URL that downloads (GET) or uploads (PUT, needs storage:file:write) without a credential',
        description:
          'GET: serves the current version of the file only. PUT: one upload, with `contentType` if given; it ' +
          'may replace a file only if the signer holds storage:file:delete. The URL is absolute when ' +
          "PLEXICA_PUBLIC_URL is set or the Host is in PLEXICA_PUBLIC_HOSTS (or it is S3's own), else a path " +
          'on this server. Each issuance is recorded in the audit log.',
        params: WildcardPath,
        querystring: Type.Object(
          {
            method: Type.Optional(Type.Union([Type.Literal('GET'), Type.Literal('PUT')], { default: 'GET' })),
            expiresIn: Type.Optional(
              Type.Integer({ minimum: 1, maximum: 604_800, default: 3600, description: 'seconds' }),
            ),
            contentType: Type.Optional(
              Type.String({
                maxLength: 255,
                description: 'PUT only: the Content-Type the upload must carry',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: responses({
          200: Type.Object({
            url: Type.String(),
            method: Type.Union([Type.Literal('GET'), Type.Literal('PUT')]),
            expiresAt: Type.String({ format: 'date-time' }),
          }),
        }),
      },
    },
    async (request) => {
      const method = request.query.method ?? 'GET';
      // signing an upload is writing
      if (method === 'PUT') registry.authorize(request.ctx, 'storage:file:write');
      const signed = await storage.signedUrl(request.ctx, request.params['*'], {
        method,
        expiresIn: request.query.expiresIn ?? 3600,
        ...(request.query.contentType !== undefined && { contentType: request.query.contentType }),
        overwrite: mayDelete(request.ctx),
      });
      const base = signed.url.startsWith('/') ? publicOrigin(origin, request) : undefined;
      if (base) signed.url = new URL(signed.url, base).toString();
      return signed;
    },
  );

  const CopyBody = Type.Object(
    { from: Type.String({ maxLength: 4096 }), to: Type.String({ maxLength: 4096 }), overwrite: Overwrite },
    { additionalProperties: false },
  );
  for (const action of ['copy', 'move'] as const) {
    server.post(
      `/api/v1/storage/${action}`,
      {
        config: { permission: 'storage:file:write' },
        schema: {
          tags,
          summary: action === 'copy' ? 'Copy a file (server-side)' : 'Move or rename a file',
          description:
            action === 'copy'
              ? 'Copying onto an existing file replaces it: that needs storage:file:delete too.'
              : 'Moving vacates the source, so it needs storage:file:delete as well as write; so does ' +
                'replacing an existing target.',
          body: CopyBody,
          response: responses({ 200: FileRef }),
        },
      },
      async (request) => {
        const { from, to, overwrite } = request.body;
        if (action === 'move') registry.authorize(request.ctx, 'storage:file:delete');
        return storage[action](request.ctx, from, to, { overwrite, mayReplace: mayDelete(request.ctx) });
      },
    );
  }

  server.get(
    '/api/v1/storage/usage',
    {
      config: { permission: 'storage:file:read' },
      schema: {
        tags,
        summary: "The tenant's storage usage and limits",
        response: responses({
          200: Type.Object({
            bytes: Type.Integer(),
            objects: Type.Integer(),
            quotaBytes: Type.Union([Type.Integer(), Type.Null()]),
            maxFileSize: Type.Integer(),
          }),
        }),
      },
    },
    async (request) => storage.usage(request.ctx),
  );
}
