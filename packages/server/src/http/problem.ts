import { Type } from '@sinclair/typebox';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { type ErrorKind, type FieldError, isPlexicaError, PlexicaError } from '../infra/errors.js';

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
  range_not_satisfiable: 416,
  rate_limited: 429,
  unavailable: 503,
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
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new PlexicaError('PLX_UNSUPPORTED_MEDIA_TYPE', { detail: e.message, cause: err });
  }
  if (err instanceof SyntaxError && e.statusCode === 400) {
    return new PlexicaError('PLX_MALFORMED_JSON', { detail: err.message, cause: err });
  }
  return new PlexicaError('PLX_INTERNAL', { cause: err });
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: PlexicaError): FastifyReply {
  const status = STATUS_BY_KIND[error.kind];
  if (status === 401) reply.header('www-authenticate', 'Bearer');
  if (error.kind === 'rate_limited' && typeof error.extra?.retryAfter === 'number') {
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
      instance: request.url.split('?')[0],
      code: error.code,
      traceId: request.id,
      ...(error.errors && { errors: error.errors }),
      ...error.extra,
    });
}
