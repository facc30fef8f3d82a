import { Type } from '@sinclair/typebox';
import type { RequestContext } from '../../context.js';
import { Paging, pageOf, responses } from '../../http/schemas.js';
import type { Server } from '../../http/types.js';
import { isPlexicaError } from '../../infra/errors.js';
import type { AuditService } from './service.js';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

const AuditEventSchema = Type.Object(
  {
    id: Type.String(),
    at: Type.String({ format: 'date-time' }),
    actorType: Type.Union(
      ['user', 'api_key', 'system', 'anonymous'].map((v) => Type.Literal(v)),
      { description: 'anonymous: no principal, but a credential (a signed URL)' },
    ),
    actorId: Nullable(Type.String({ description: 'user id, or API key id for an API key' })),
    credential: Nullable(
      Type.Union(
        ['access_token', 'oidc_token', 'api_key', 'signed_url', 'password'].map((v) => Type.Literal(v)),
      ),
    ),
    ip: Nullable(Type.String()),
    action: Type.String(),
    targetType: Type.String(),
    targetId: Nullable(Type.String()),
    traceId: Nullable(
      Type.String({ description: 'X-Trace-ID as received: chosen by the client when it sent one' }),
    ),
    requestId: Nullable(
      Type.String({ description: "The server's own id of the request (never client-chosen)" }),
    ),
    data: Type.Record(Type.String(), Type.Unknown()),
  },
  { $id: 'AuditEvent' },
);

export async function auditRoutes(server: Server, deps: { audit: AuditService }): Promise<void> {
  server.get(
    '/api/v1/audit-events',
    {
      config: { permission: 'core:audit:read' },
      schema: {
        tags: ['audit'],
        summary: "The tenant's audit log, newest first",
        description:
          'Changes (users, roles, API keys, identity provider, files, jobs, schedules, tenant settings), ' +
          'signed-URL issuance and permission denials (`access.denied`); reads are not recorded.',
        querystring: Type.Object(
          { ...Paging, action: Type.Optional(Type.String({ maxLength: 100 })) },
          { additionalProperties: false },
        ),
        response: responses({ 200: Type.Array(AuditEventSchema) }),
      },
    },
    async (request) => deps.audit.list(request.ctx, { ...request.query, ...pageOf(request.query) }),
  );
}

/**
 * Records every refusal of an authenticated caller (`forbidden` errors: a
 * missing permission, another tenant's header, a replace without delete…) in
 * its tenant's log, in one place for all routes: wherever the refusal was
 * thrown, it passes through here. Register it before the routes. Refusals
 * without an authenticated tenant (a bad signed URL names a tenant nobody
 * verified) are not recorded, so nobody can write into a tenant's log from
 * outside.
 */
export function auditDenials(server: Server, audit: AuditService): void {
  server.addHook('onError', async (request, _reply, error) => {
    const ctx = request.ctx as RequestContext | null;
    if (!ctx?.principal || !ctx.tenant || !isPlexicaError(error) || error.kind !== 'forbidden') return;
    const route = `${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]}`;
    try {
      await audit.record(ctx, {
        action: 'access.denied',
        targetType: 'route',
        targetId: route,
        data: { code: error.code, detail: error.message },
      });
    } catch (err) {
      // the caller still gets its 403; a lost audit row is an operator's alarm
      request.log.error({ err }, 'could not record a permission denial in the audit log');
    }
  });
}
