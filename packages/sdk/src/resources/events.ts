import type { Body, Query } from '../operations.js';
import type { components } from '../schema.js';
import { type Transport, unwrap } from '../transport.js';

export type App = components['schemas']['App'];
export type PlatformEvent = components['schemas']['PlatformEvent'];
export type DeadLetter = components['schemas']['DeadLetter'];
export type ConsumerGroup = components['schemas']['ConsumerGroup'];

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

    /** Events a consumer group gave up on (the tenant's; a super admin's: all), newest first, cursor paging. */
    deadLetters: (query: Query<'/api/v1/dead-letters', 'get'> = {}) =>
      unwrap(api.GET('/api/v1/dead-letters', { params: { query } })),
    deadLetter: (id: string) => unwrap(api.GET('/api/v1/dead-letters/{id}', { params: { path: { id } } })),
    /** Delivers it to its group once more; a second time is `PLX_EVENT_DEAD_LETTER_REDRIVEN`. */
    redriveDeadLetter: (id: string) =>
      unwrap(api.POST('/api/v1/dead-letters/{id}/redrive', { params: { path: { id } } })),
    /** All or nothing: every id must be found and not re-driven yet. */
    redriveDeadLetters: (ids: string[]) =>
      unwrap(api.POST('/api/v1/dead-letters/redrive', { body: { ids } })),
    /** The consumer groups and their lag (super admins). */
    consumerGroups: () => unwrap(api.GET('/api/v1/event-groups')),
    /** Moves a group to a position or a past time, for every tenant it serves (super admins). */
    replayGroup: (group: string, point: Body<'/api/v1/event-groups/{group}/replay', 'post'>) =>
      unwrap(api.POST('/api/v1/event-groups/{group}/replay', { params: { path: { group } }, body: point })),
  };
}
