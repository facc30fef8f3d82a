import { type Body, byId, type Query } from '../operations.js';
import type { components } from '../schema.js';
import { type Transport, unwrap } from '../transport.js';

export type Tenant = components['schemas']['Tenant'];

/** Tenants (super admins). */
export function createTenantsResource({ api }: Transport) {
  return {
    /** A repeated `idempotencyKey` returns the tenant the first call created. */
    create: (body: Body<'/api/v1/tenants', 'post'>, idempotencyKey?: string) =>
      unwrap(
        api.POST('/api/v1/tenants', {
          body,
          ...(idempotencyKey && { headers: { 'idempotency-key': idempotencyKey } }),
        }),
      ),
    list: (query: Query<'/api/v1/tenants', 'get'> = {}) =>
      unwrap(api.GET('/api/v1/tenants', { params: { query } })),
    get: (tenantId: string) => unwrap(api.GET('/api/v1/tenants/{id}', byId(tenantId))),
    update: (tenantId: string, body: Body<'/api/v1/tenants/{id}', 'patch'>) =>
      unwrap(api.PATCH('/api/v1/tenants/{id}', { ...byId(tenantId), body })),
    remove: (tenantId: string) => unwrap(api.DELETE('/api/v1/tenants/{id}', byId(tenantId))),
  };
}
