import { type Body, byId } from '../operations.js';
import type { components } from '../schema.js';
import { type Transport, unwrap } from '../transport.js';

export type WebhookEndpoint = components['schemas']['WebhookEndpoint'];

/** Standard Webhooks endpoints of the caller's tenant, their deliveries, redelivery and recovery. */
export function createWebhooksResource({ api }: Transport) {
  return {
    /** @returns the endpoint with its `whsec_` secret, shown this once */
    create: (body: Body<'/api/v1/webhooks', 'post'>) => unwrap(api.POST('/api/v1/webhooks', { body })),
    createForApp: (appId: string, body: Body<'/api/v1/apps/{appId}/webhooks', 'post'>) =>
      unwrap(api.POST('/api/v1/apps/{appId}/webhooks', { params: { path: { appId } }, body })),
    list: () => unwrap(api.GET('/api/v1/webhooks')),
    get: (id: string) => unwrap(api.GET('/api/v1/webhooks/{id}', byId(id))),
    update: (id: string, body: Body<'/api/v1/webhooks/{id}', 'patch'>) =>
      unwrap(api.PATCH('/api/v1/webhooks/{id}', { ...byId(id), body })),
    remove: (id: string) => unwrap(api.DELETE('/api/v1/webhooks/{id}', byId(id))),
    rotateSecret: (id: string, overlapSeconds?: number) =>
      unwrap(
        api.POST('/api/v1/webhooks/{id}/rotate-secret', {
          ...byId(id),
          body: overlapSeconds === undefined ? {} : { overlapSeconds },
        }),
      ),
    deliveries: (id: string, limit?: number) =>
      unwrap(
        api.GET('/api/v1/webhooks/{id}/deliveries', {
          params: { path: { id }, query: limit ? { limit } : {} },
        }),
      ),
    redeliver: (id: string, deliveryId: string) =>
      unwrap(
        api.POST('/api/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver', {
          params: { path: { id, deliveryId } },
        }),
      ),
    recover: (id: string, since: string, until?: string) =>
      unwrap(
        api.POST('/api/v1/webhooks/{id}/recover', { ...byId(id), body: { since, ...(until && { until }) } }),
      ),
  };
}
