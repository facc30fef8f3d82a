import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { Type } from '@sinclair/typebox';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import {
  type ErrorCode,
  type ErrorKind,
  type FieldError,
  isPlexicaError,
  PlexicaError,
} from '../infra/errors.js';

export const STATUS_BY_KIND: Record<ErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  unprocessable: 422,
  gone: 410,
  too_large: 413,
  unsupported_media: 415,
  too_long: 414,
  headers_too_large: 431,
  timeout: 408,
  range_not_satisfiable: 416,
  rate_limited: 429,
  unavailable: 503,
  insufficient_storage: 507,
  internal: 500,
};

/** RFC 9457 problem document, as every error response carries it. */
export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.Optional(Type.String()),
    instance: Type.Optional(Type.String()),
    code: Type.String({ description: 'Stable error code, see docs/errors.md' }),
    traceId: Type.String(),
    errors: Type.Optional(Type.Array(Type.Object({ field: Type.String(), message: Type.String() }))),
  },
  { $id: 'Problem', additionalProperties: true },
);

interface AjvError {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** Ajv's errors → `[{ field, message }]`, with `field` as a dotted path (`body.slug`). */
function fieldErrors(context: string | undefined, validation: AjvError[]): FieldError[] {
  return validation.map((e) => {
    const path = (e.instancePath ?? '').split('/').filter(Boolean);
    if (e.keyword === 'required' && typeof e.params?.missingProperty === 'string')
      path.push(e.params.missingProperty);
    if (e.keyword === 'additionalProperties' && typeof e.params?.additionalProperty === 'string') {
      path.push(e.params.additionalProperty);
      return { field: [context, ...path].filter(Boolean).join('.'), message: 'unknown field' };
    }
    return { field: [context, ...path].filter(Boolean).join('.'), message: e.message ?? 'is invalid' };
  });
}

/** Maps Fastify's own errors (parsing, limits, validation) to catalogue errors. */
export function toPlexicaError(err: unknown): PlexicaError {
  if (isPlexicaError(err)) return err;
  const e = err as FastifyError & { validationContext?: string; validation?: AjvError[] };
  if (e?.validation) {
    const errors = fieldErrors(e.validationContext, e.validation);
    return new PlexicaError('PLX_VALIDATION', {
      detail: errors.map((x) => `${x.field}: ${x.message}`).join('; '),
      errors,
      cause: err,
    });
  }
  switch (e?.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new PlexicaError('PLX_MALFORMED_JSON', { detail: e.message, cause: err });
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PlexicaError('PLX_BODY_TOO_LARGE', { cause: err });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new PlexicaError('PLX_UNSUPPORTED_MEDIA_TYPE', { detail: e.message, cause: err });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new PlexicaError('PLX_MALFORMED_REQUEST', { detail: e.message, cause: err });
    // the router's own errors: their messages echo the path, so none is passed on
    case 'FST_ERR_BAD_URL':
      return new PlexicaError('PLX_MALFORMED_URL', { cause: err });
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new PlexicaError('PLX_URL_TOO_LONG', { cause: err });
  }
  if (err instanceof SyntaxError && e.statusCode === 400) {
    return new PlexicaError('PLX_MALFORMED_JSON', { detail: err.message, cause: err });
  }
  return new PlexicaError('PLX_INTERNAL', { cause: err });
}

/** Catalogue codes whose request path is not echoed as `instance`: the path is what was wrong. */
const PATH_NOT_ECHOED = new Set<string>(['PLX_MALFORMED_URL', 'PLX_URL_TOO_LONG']);

export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: PlexicaError): FastifyReply {
  const status = STATUS_BY_KIND[error.kind];
  if (status === 401) reply.header('www-authenticate', 'Bearer');
  // a full window, or an engine that is down for now (PLX_DATABASE_UNAVAILABLE): when to come back
  if (
    (error.kind === 'rate_limited' || error.kind === 'unavailable') &&
    typeof error.extra?.retryAfter === 'number'
  ) {
    reply.header('retry-after', String(error.extra.retryAfter));
  }
  return reply
    .status(status)
    .type('application/problem+json')
    .send({
      type: `urn:plexica:problem:${error.code}`,
      title: error.title,
      status,
      // internal errors never leak their message (it may hold SQL or paths)
      ...(error.kind !== 'internal' && error.message !== error.title && { detail: error.message }),
      ...(!PATH_NOT_ECHOED.has(error.code) && { instance: request.url.split('?')[0] }),
      code: error.code,
      traceId: request.id,
      ...(error.errors && { errors: error.errors }),
      ...error.extra,
    });
}

/** Node's HTTP parser errors (`clientError`) → catalogue code; anything else is a malformed request. */
function clientErrorCode(err: NodeJS.ErrnoException): ErrorCode {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'PLX_REQUEST_TIMEOUT';
  if (err.code === 'HPE_HEADER_OVERFLOW') return 'PLX_HEADERS_TOO_LARGE';
  return 'PLX_MALFORMED_REQUEST';
}

/**
 * The problem document for a request Node's parser refused before Fastify saw
 * it (a short Content-Length, garbage after a body, oversized headers), written
 * straight to the socket as Fastify's default handler does, then the socket is
 * closed: after a parse error the stream position is unknown. `headers` are the
 * security headers every other response carries.
 */
export function writeClientErrorProblem(
  err: NodeJS.ErrnoException,
  socket: Duplex,
  headers: Record<string, string>,
): string | undefined {
  // a reset connection has nobody to answer; a started response cannot take another
  const written = (socket as Duplex & { bytesWritten?: number }).bytesWritten ?? 0;
  if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable || written > 0) {
    socket.destroy();
    return undefined;
  }
  const error = new PlexicaError(clientErrorCode(err));
  const status = STATUS_BY_KIND[error.kind];
  const traceId = randomUUID();
  const body = JSON.stringify({
    type: `urn:plexica:problem:${error.code}`,
    title: error.title,
    status,
    code: error.code,
    traceId,
  });
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Bad Request'}`,
    'Content-Type: application/problem+json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    `X-Trace-ID: ${traceId}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  return traceId;
}
