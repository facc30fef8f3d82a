import { randomUUID } from 'node:crypto';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyRequest, LogController } from 'fastify';
import type { Logger } from 'pino';
import type { KernelConfig } from '../config/index.js';
import { createIdempotencyHooks } from '../http/idempotency.js';
import { ProblemSchema, sendProblem, toPlexicaError, writeClientErrorProblem } from '../http/problem.js';
import { securityHeaders } from '../http/security-headers.js';
import { refuseUnstorableInput } from '../http/storable-input.js';
import type { RouteGuard, Server } from '../http/types.js';
import { createValidatorCompiler } from '../http/validation.js';
import { translateDatabaseError } from '../infra/database/errors.js';
import { PlexicaError } from '../infra/errors.js';
import type { IdempotencyStore } from '../infra/idempotency.js';
import type { Metrics } from '../infra/metrics.js';
import { createGuard, createSignedGuard, type GuardDeps } from './guard.js';
import { openapiOptions } from './openapi.js';

// X-Trace-ID is echoed into logs and headers: accept only a safe shape, else generate
const TRACE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The proxies whose X-Forwarded-* are believed: never "every hop", with which a
 * client-written X-Forwarded-For chose request.ip and so its own rate-limit
 * bucket (issue 9 item 5). A list names the proxies (proxy-addr checks each hop
 * from the socket inwards). Fastify 5 refuses a bare number (it cannot tell the
 * proxy from a client that connects directly), so a hop count is the classic
 * "trust the nearest n hops" function: sound only when nothing but those
 * proxies can reach the server, which the option's description says.
 */
function trustProxyOption(
  trust: KernelConfig['trustProxy'],
): false | string[] | ((address: string, hop: number) => boolean) {
  if (Array.isArray(trust)) return trust;
  if (trust === 0) return false;
  return (_address, hop) => hop < trust;
}

export interface ServerDeps extends GuardDeps {
  config: KernelConfig;
  idempotency: IdempotencyStore;
  logger: Logger;
  metrics: Metrics;
}

/**
 * The Fastify instance with the kernel's cross-cutting behaviour: trace ids,
 * problem+json errors, strict validation, guard on every /api route, metrics,
 * security headers, CORS and the OpenAPI document. Module routes are added by
 * the caller with `server.register`.
 */
export async function createServer(deps: ServerDeps): Promise<Server> {
  const { config, logger, metrics } = deps;
  const headers = securityHeaders({
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        styleSrc: ["'self'", "'unsafe-inline'"],
      },
    },
  });
  const server = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: config.bodyLimit,
    trustProxy: trustProxyOption(config.trustProxy),
    logController: new LogController({ requestIdLogLabel: 'traceId' }),
    genReqId: (req) => {
      const given = req.headers['x-trace-id'];
      return typeof given === 'string' && TRACE_ID.test(given) ? given : randomUUID();
    },
    ajv: { customOptions: { removeAdditional: false } },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // the router's errors (bad percent-encoding, a parameter over maxParamLength) are
    // answered before any hook runs: give them the headers and problem document of all others
    frameworkErrors: (err, request, reply) => {
      reply.headers(headers).header('x-trace-id', request.id);
      return sendProblem(request, reply, toPlexicaError(err));
    },
    clientErrorHandler: (err, socket) => {
      const traceId = writeClientErrorProblem(err, socket, headers);
      if (traceId) logger.debug({ err, traceId }, 'client error');
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  server.setValidatorCompiler(createValidatorCompiler());
  // the API speaks JSON: anything else is 415, not a string body that fails validation later
  server.removeContentTypeParser('text/plain');
  server.addSchema(ProblemSchema);
  server.decorateRequest('ctx', null as unknown as FastifyRequest['ctx']);

  const guard = createGuard(deps);
  const signedGuard = createSignedGuard(deps.tenants);
  const idempotency = createIdempotencyHooks(deps.idempotency);
  server.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/api/')) return;
    const declared = route.config as RouteGuard | undefined;
    if (!declared?.auth && !declared?.permission && !declared?.platform) {
      throw new Error(`route ${route.method} ${route.url} declares no auth, permission or platform guard`);
    }
    if (declared.permission && !deps.registry.has(declared.permission)) {
      throw new Error(
        `route ${route.method} ${route.url} needs unregistered permission ${declared.permission}`,
      );
    }
    route.onRequest = [...(route.onRequest ? [route.onRequest].flat() : []), guard];
    if (declared.auth === 'signed') {
      if (!declared.verifySignature)
        throw new Error(`signed route ${route.method} ${route.url} declares no verifySignature`);
      route.preHandler = [signedGuard, ...(route.preHandler ? [route.preHandler].flat() : [])];
    }
    if (declared.idempotent) {
      route.preHandler = [...(route.preHandler ? [route.preHandler].flat() : []), idempotency.preHandler];
      route.onSend = [...(route.onSend ? [route.onSend].flat() : []), idempotency.onSend];
    }
  });

  server.addHook('onRequest', async (request, reply) => {
    reply.header('x-trace-id', request.id);
  });
  // once for every route, before validation: a NUL or lone surrogate was a 500 from the database
  server.addHook('preValidation', refuseUnstorableInput);
  server.addHook('onResponse', async (request, reply) => {
    // the route pattern, never the raw URL: ids in paths would explode label cardinality
    const labels = {
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      status: String(reply.statusCode),
    };
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
  });

  server.setErrorHandler((err, request, reply) => {
    const error = toPlexicaError(translateDatabaseError(err));
    if (error.kind === 'internal' || error.kind === 'unavailable')
      request.log.error({ err }, 'request failed');
    return sendProblem(request, reply, error);
  });
  server.setNotFoundHandler((request, reply) =>
    sendProblem(
      request,
      reply,
      new PlexicaError('PLX_ROUTE_NOT_FOUND', { detail: `${request.method} ${request.url.split('?')[0]}` }),
    ),
  );

  server.addHook('onRequest', async (_request, reply) => {
    reply.headers(headers);
  });
  await server.register(cors, {
    origin: config.corsOrigins.length > 0 ? config.corsOrigins : false,
    exposedHeaders: ['x-trace-id', 'retry-after', 'ratelimit-remaining', 'ratelimit-reset'],
    credentials: true,
  });
  await server.register(swagger, openapiOptions());
  await server.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  server.get('/api/v1/openapi.json', { schema: { hide: true }, config: { auth: 'public' } }, async () =>
    server.swagger(),
  );
  return server;
}
