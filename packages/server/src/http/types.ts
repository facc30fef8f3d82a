import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest, RawServerDefault } from 'fastify';
import type { RequestContext } from '../context.js';

/** How a route is guarded; every route under /api must declare one. */
export interface RouteGuard {
  /**
   * `public`: no credential (anonymous rate limit per IP); `authenticated`: any
   * valid credential; `signed`: the URL carries a signature (`verifySignature`).
   */
  auth?: 'public' | 'authenticated' | 'signed';
  /**
   * For `auth: 'signed'`: checks the URL's signature once the request is
   * validated, and returns the id of the tenant it was signed for. The guard then
   * puts that tenant in `request.ctx` (no principal; credential `signed_url`).
   * Throws the route's own error for a bad or expired signature.
   */
  verifySignature?: (request: FastifyRequest) => string;
  /** Permission key the caller must hold (implies authenticated). */
  permission?: string;
  /** Only a super admin may call it. */
  platform?: boolean;
  /** Honours the Idempotency-Key header (routes that create things). */
  idempotent?: boolean;
  /**
   * Top-level fields (`querystring.path`) the route checks itself with a more
   * precise error before anything is stored, so the server-wide refusal of NUL
   * and unpaired surrogates leaves them to it (the wildcard `params.*` always is).
   */
  rawStrings?: readonly string[];
  /**
   * The request body as the OpenAPI document shows it, for a route that reads
   * its body itself (a stream): `{ 'multipart/form-data': schema, … }` by media
   * type. Documentation only; nothing validates against it.
   */
  documentedBody?: Record<string, unknown>;
}

declare module 'fastify' {
  interface FastifyContextConfig extends RouteGuard {}
  interface FastifyRequest {
    ctx: RequestContext;
  }
}

export type Server = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;
