import type { Query } from '../operations.js';
import type { components } from '../schema.js';
import { type Transport, unwrap } from '../transport.js';

export type AuditEvent = components['schemas']['AuditEvent'];

/** The caller's tenant's audit log, newest first. */
export function createAuditEventsResource({ api }: Transport) {
  return {
    list: (query: Query<'/api/v1/audit-events', 'get'> = {}) =>
      unwrap(api.GET('/api/v1/audit-events', { params: { query } })),
  };
}
