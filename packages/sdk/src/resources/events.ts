import type { Body, Query } from '../operations.js';
import type { components } from '../schema.js';
import { type Transport, unwrap } from '../transport.js';

export type App = components['schemas']['App'];
export type PlatformEvent = components['schemas']['PlatformEvent'];

const byApp = (appId: string) => ({ params: { path: { appId } } });

/** Apps of the caller's tenant, the events they publish, and the tenant's event log. */
export function createEventsResource({ api }: Transport) {
  return {
    createApp: (body: Body<'/api/v1/apps', 'post'>) => unwrap(api.POST('/api/v1/apps', { body })),
    apps: (query: Query<'/api/v1/apps', 'get'> = {}) =>
      unwrap(api.GET('/api/v1/apps', { params: { query } })),
    app: (appId: string) => unwrap(api.GET('/api/v1/apps/{appId}', byApp(appId))),
    removeApp: (appId: string) => unwrap(api.DELETE('/api/v1/apps/{appId}', byApp(appId))),
    /** Publishes as the app; the same `idempotencyKey` returns the first event. */
    publish: (appId: string, body: Body<'/api/v1/apps/{appId}/events', 'post'>) =>
      unwrap(api.POST('/api/v1/apps/{appId}/events', { ...byApp(appId), body })),
    appEvents: (appId: string, query: Query<'/api/v1/apps/{appId}/events', 'get'> = {}) =>
      unwrap(api.GET('/api/v1/apps/{appId}/events', { params: { path: { appId }, query } })),
    /** The tenant's log, newest first; pass `nextCursor` back as `cursor` for older ones. */
    list: (query: Query<'/api/v1/events', 'get'> = {}) =>
      unwrap(api.GET('/api/v1/events', { params: { query } })),
  };
}
