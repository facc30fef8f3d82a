import { createAuditEventsResource } from './resources/audit.js';
import { createEventsResource } from './resources/events.js';
import {
  createApiKeysResource,
  createAuthResource,
  createRolesResource,
  createUsersResource,
} from './resources/identity.js';
import { createJobsResource } from './resources/jobs.js';
import { createRealtimeResource } from './resources/realtime.js';
import { createSearchResource } from './resources/search.js';
import { createStorageResource } from './resources/storage.js';
import { createTenantsResource } from './resources/tenants.js';
import { createWebhooksResource } from './resources/webhooks.js';
import { type ClientOptions, createTransport } from './transport.js';

export { ERROR_CODES, type ErrorCode, isErrorCode, PlexicaApiError, type Problem } from './errors.js';
export type { Body, Query } from './operations.js';
export type { AuditEvent } from './resources/audit.js';
export type { App, ConsumerGroup, DeadLetter, PlatformEvent } from './resources/events.js';
export type { ApiKey, IdentityProvider, Role, TokenPair, User } from './resources/identity.js';
export type { Job } from './resources/jobs.js';
export type {
  ChannelSpec,
  RealtimeSubscribeOptions,
  RealtimeSubscription,
  StreamEvent,
} from './resources/realtime.js';
export type { SearchDocument, SearchResult, SearchType } from './resources/search.js';
export type { StoredFile, UploadOptions } from './resources/storage.js';
export type { Tenant } from './resources/tenants.js';
export type { WebhookEndpoint } from './resources/webhooks.js';
export type { components, paths } from './schema.js';
export type { ClientOptions } from './transport.js';
export type { UploadBody, UploadProgress } from './upload-stream.js';

/**
 * Typed client for the Plexica REST API, generated from its OpenAPI document:
 * one resource per server module (`resources/`), all sharing one transport that
 * sets the credential, tenant and trace headers.
 *
 * @example
 * const plexica = createClient({ baseUrl: 'http://localhost:8080' });
 * const { accessToken } = await plexica.auth.login({ email, password, tenant: 'acme' });
 * plexica.setToken(accessToken);
 * const users = await plexica.users.list({ limit: 50 });
 */
export function createClient(options: ClientOptions) {
  const transport = createTransport(options);
  return {
    /** The underlying openapi-fetch client, for routes without a helper. */
    api: transport.api,
    setToken: transport.setToken,
    setTenant: transport.setTenant,
    auth: createAuthResource(transport),
    tenants: createTenantsResource(transport),
    users: createUsersResource(transport),
    apiKeys: createApiKeysResource(transport),
    roles: createRolesResource(transport),
    storage: createStorageResource(transport),
    jobs: createJobsResource(transport),
    search: createSearchResource(transport),
    auditEvents: createAuditEventsResource(transport),
    events: createEventsResource(transport),
    webhooks: createWebhooksResource(transport),
    /** The tenant's events live over WebSocket, with reconnect and resume. */
    realtime: createRealtimeResource(transport),
  };
}

export type PlexicaClient = ReturnType<typeof createClient>;
