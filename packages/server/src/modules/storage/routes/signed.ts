import type { Readable } from 'node:stream';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { RAW_FILE_BODY, responses } from '../../../http/schemas.js';
import type { Server } from '../../../http/types.js';
import { PlexicaError } from '../../../infra/errors.js';
import type { PermissionRegistry } from '../../../permissions.js';
import { normalizePath } from '../paths.js';
import type { StorageService } from '../service.js';
import type { SignedUrlGrant } from '../signing.js';
import {
  declaredSize,
  FileRef,
  FileResponses,
  headerOf,
  mayDelete,
  readOptions,
  receiving,
  sendFile,
  tags,
  WildcardPath,
} from './transfer.js';

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
const verifierOf =
  (storage: StorageService) =>
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

/** PUT through a signed URL: registered in the scope that streams request bodies. */
export function signedUploadRoute(s: Server, storage: StorageService): void {
  const verifying = verifierOf(storage);
  s.put(
    '/api/v1/storage/signed/*',
    {
      config: { auth: 'signed', verifySignature: verifying(putGrant), documentedBody: RAW_FILE_BODY },
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
}

/** GET and HEAD through a signed URL: the version that was signed, or nothing. */
export function signedDownloadRoutes(server: Server, storage: StorageService): void {
  const verifying = verifierOf(storage);
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
  }
}

/** Issues signed URLs (recorded in the audit log by the service). */
export function signedUrlRoute(
  server: Server,
  deps: { storage: StorageService; registry: PermissionRegistry; origin: PublicOrigin },
): void {
  const { storage, registry, origin } = deps;
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
}
