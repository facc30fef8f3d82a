import { type Body, byId, type Query } from '../operations.js';
import type { components, paths } from '../schema.js';
import { type Transport, unwrap } from '../transport.js';

export type User = components['schemas']['User'];
export type ApiKey = components['schemas']['ApiKey'];
export type Role = components['schemas']['Role'];
export type TokenPair = paths['/api/v1/auth/login']['post']['responses'][200]['content']['application/json'];
export type IdentityProvider =
  paths['/api/v1/identity-provider']['get']['responses'][200]['content']['application/json'];

/** Sign-in and the caller's own sessions. */
export function createAuthResource({ api }: Transport) {
  return {
    login: (body: Body<'/api/v1/auth/login', 'post'>) => unwrap(api.POST('/api/v1/auth/login', { body })),
    refresh: (refreshToken: string) => unwrap(api.POST('/api/v1/auth/refresh', { body: { refreshToken } })),
    logout: (refreshToken: string) => unwrap(api.POST('/api/v1/auth/logout', { body: { refreshToken } })),
    me: () => unwrap(api.GET('/api/v1/auth/me')),
    sessions: () => unwrap(api.GET('/api/v1/auth/sessions')),
    revokeSession: (sessionId: string) => unwrap(api.DELETE('/api/v1/auth/sessions/{id}', byId(sessionId))),
    /** Your own password, with the current one; your other sessions end. */
    changePassword: (currentPassword: string, newPassword: string) =>
      unwrap(api.POST('/api/v1/auth/password', { body: { currentPassword, newPassword } })),
  };
}

/** Users of the caller's tenant. */
export function createUsersResource({ api }: Transport) {
  return {
    create: (body: Body<'/api/v1/users', 'post'>) => unwrap(api.POST('/api/v1/users', { body })),
    list: (query: Query<'/api/v1/users', 'get'> = {}) =>
      unwrap(api.GET('/api/v1/users', { params: { query } })),
    get: (userId: string) => unwrap(api.GET('/api/v1/users/{id}', byId(userId))),
    update: (userId: string, body: Body<'/api/v1/users/{id}', 'patch'>) =>
      unwrap(api.PATCH('/api/v1/users/{id}', { ...byId(userId), body })),
    remove: (userId: string) => unwrap(api.DELETE('/api/v1/users/{id}', byId(userId))),
  };
}

/** API keys of the caller's tenant. */
export function createApiKeysResource({ api }: Transport) {
  return {
    /** The returned `secret` is shown this once. */
    create: (body: Body<'/api/v1/api-keys', 'post'>) => unwrap(api.POST('/api/v1/api-keys', { body })),
    list: () => unwrap(api.GET('/api/v1/api-keys')),
    get: (keyId: string) => unwrap(api.GET('/api/v1/api-keys/{id}', byId(keyId))),
    revoke: (keyId: string) => unwrap(api.DELETE('/api/v1/api-keys/{id}', byId(keyId))),
  };
}

/** Roles of the caller's tenant, and the permissions they can be built from. */
export function createRolesResource({ api }: Transport) {
  const byKey = (key: string) => ({ params: { path: { key } } });
  return {
    list: () => unwrap(api.GET('/api/v1/roles')),
    create: (body: Body<'/api/v1/roles', 'post'>) => unwrap(api.POST('/api/v1/roles', { body })),
    update: (key: string, body: Body<'/api/v1/roles/{key}', 'patch'>) =>
      unwrap(api.PATCH('/api/v1/roles/{key}', { ...byKey(key), body })),
    remove: (key: string) => unwrap(api.DELETE('/api/v1/roles/{key}', byKey(key))),
    permissions: () => unwrap(api.GET('/api/v1/permissions')),
  };
}
