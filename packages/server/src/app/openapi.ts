import type { SwaggerOptions } from '@fastify/swagger';
import type { RouteGuard } from '../http/types.js';

/**
 * The OpenAPI document's shape beyond what each route declares, so that it
 * lints clean with Redocly's recommended rules (checked by openapi.test.ts) and
 * the docs page can make real calls:
 * - `servers`, `info.license`;
 * - an `operationId` for every operation (generators for other languages name
 *   methods from it), derived from method and path unless the route sets one;
 * - the optional `X-Tenant-ID` header on every route that acts in a tenant
 *   (a super admin names the tenant with it);
 * - a description for every response, never "Default Response";
 * - a request body for the upload routes, which parse their bodies themselves
 *   (a stream), so that Swagger UI shows a file picker.
 */
export function openapiOptions(): SwaggerOptions {
  return {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Plexica API',
        version: '1.0.0',
        description:
          'Multi-tenant platform core. Errors are RFC 9457 problem documents with a stable `code`. ' +
          'Authenticate with `Authorization: Bearer <access token>` from POST /api/v1/auth/login, or ' +
          '`Authorization: Bearer plx_…` with an API key.',
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      },
      servers: [{ url: '/', description: 'This Plexica server' }],
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'Access JWT or API key (plx_…)' },
        },
      },
      security: [{ bearer: [] }],
    },
    transform: ({ schema, url, route }) => {
      const wildcard = url.endsWith('*');
      const path = wildcard ? `${url.slice(0, -1)}:path` : url;
      const method = [route.method].flat()[0] ?? 'GET';
      const guard = route.config as RouteGuard | undefined;
      const next: Record<string, unknown> = { ...schema };
      // `/storage/download/*` is documented as `/storage/download/{path}`: generated
      // clients then have a named parameter (its value may contain "/", sent as %2F)
      if (wildcard) {
        const params = schema?.params as { properties?: Record<string, unknown> } | undefined;
        const { '*': star, ...others } = params?.properties ?? {};
        next.params = { ...params, properties: { ...others, path: star }, required: ['path'] };
      }
      next.operationId ??= operationIdOf(method, path);
      if (guard?.documentedBody) {
        const content = Object.entries(guard.documentedBody).map(([type, body]) => [type, { schema: body }]);
        next.body = { content: Object.fromEntries(content) };
      }
      if (url.startsWith('/api/') && guard?.auth !== 'public' && guard?.auth !== 'signed') {
        const headers = (schema?.headers ?? { type: 'object', properties: {} }) as {
          properties?: Record<string, unknown>;
        };
        next.headers = {
          ...headers,
          properties: {
            ...headers.properties,
            'x-tenant-id': {
              type: 'string',
              description:
                'Super admins: the tenant to act in (id or slug). Others may only name their own tenant.',
            },
          },
        };
      }
      return { schema: next as typeof schema, url: path };
    },
    transformObject: (documentObject) => {
      const document = (
        'openapiObject' in documentObject ? documentObject.openapiObject : documentObject.swaggerObject
      ) as OpenApiDocument;
      describeResponses(document);
      return document as never;
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (json.$id as string) ?? `def-${i}` },
  };
}

/** `GET /api/v1/tenants/:id/users` → `getTenantsByIdUsers`; `POST /api/v1/auth/login` → `postAuthLogin`. */
export function operationIdOf(method: string, url: string): string {
  const words = url
    .replace(/^\/api\/v1\//, '')
    .split('/')
    .filter(Boolean)
    .map((segment) => (segment.startsWith(':') ? `by-${segment.slice(1)}` : segment));
  const pascal = words
    .flatMap((word) => word.split(/[^A-Za-z0-9]+/))
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('');
  return `${method.toLowerCase()}${pascal}`;
}

interface OpenApiDocument {
  paths?: Record<string, Record<string, { responses?: Record<string, { description?: string }> }>>;
}

const DESCRIPTIONS: Record<string, string> = {
  '200': 'OK',
  '201': 'Created',
  '202': 'Accepted',
  '204': 'No content',
  '206': 'Partial content (a Range request)',
  '304': 'Not modified',
  '4XX':
    'A problem document (RFC 9457) with a stable `code`: bad input, no credential or permission, not found, conflict, rate limited',
  '5XX': 'A problem document: the server or one of its engines failed or is unavailable (retry later)',
};

function describeResponses(document: OpenApiDocument): void {
  for (const operations of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        if (response.description && response.description !== 'Default Response') continue;
        response.description = DESCRIPTIONS[status] ?? (status.startsWith('4') ? DESCRIPTIONS['4XX'] : 'OK');
      }
    }
  }
}
