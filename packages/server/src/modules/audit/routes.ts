import { Type } from '@sinclair/typebox';
import { Paging, pageOf, responses } from '../../http/schemas.js';
import type { Server } from '../../http/types.js';
import type { AuditService } from './service.js';

const AuditEventSchema = Type.Object(
  {
    id: Type.String(),
    at: Type.String({ format: 'date-time' }),
    actorType: Type.String(),
    actorId: Type.Union([Type.String(), Type.Null()]),
    action: Type.String(),
    targetType: Type.String(),
    targetId: Type.Union([Type.String(), Type.Null()]),
    traceId: Type.Union([Type.String(), Type.Null()]),
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
