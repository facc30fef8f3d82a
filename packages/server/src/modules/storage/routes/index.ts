import multipart from '@fastify/multipart';
import { Type } from '@sinclair/typebox';
import { MULTIPART_FILE_BODY, responses } from '../../../http/schemas.js';
import type { Server } from '../../../http/types.js';
import type { PermissionRegistry } from '../../../permissions.js';
import type { StorageService } from '../service.js';
import { type PublicOrigin, signedDownloadRoutes, signedUploadRoute, signedUrlRoute } from './signed.js';
import {
  FileRef,
  FileResponses,
  FileSchema,
  mayDelete,
  Overwrite,
  readOptions,
  receiveUpload,
  receiving,
  sendFile,
  tags,
  WildcardPath,
} from './transfer.js';

export { type PublicOrigin, publicOrigin } from './signed.js';

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
  const { storage, registry } = deps;
  server.addSchema(FileSchema);

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
        config: {
          permission: 'storage:file:write',
          rawStrings: ['querystring.path'],
          documentedBody: MULTIPART_FILE_BODY,
        },
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
    signedUploadRoute(s, storage);
  });

  signedDownloadRoutes(server, storage);
  signedUrlRoute(server, deps);
  // GET and an explicit HEAD: Fastify's automatic HEAD would read the whole file to discard it
  for (const method of ['GET', 'HEAD'] as const) {
    const hide = method === 'HEAD';
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
