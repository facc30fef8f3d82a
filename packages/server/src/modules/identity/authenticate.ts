import { createHash, timingSafeEqual } from 'node:crypto';
import { decodeJwt } from 'jose';
import { type Kysely, sql } from 'kysely';
import type { Logger } from 'pino';
import { type Authenticated, assertTenantUsable, type Principal, toTenantRef } from '../../context.js';
import { prepareQuery } from '../../infra/database/index.js';
import { PlexicaError } from '../../infra/errors.js';
import type { PermissionRegistry } from '../../permissions.js';
import { parseApiKey } from './api-keys.js';
import type { OidcVerifier } from './oidc.js';
import type { PrincipalCache } from './principal-cache.js';
import type { IdentityTables } from './tables.js';
import { type AccessClaims, TOKEN_ISSUER, type TokenIssuer } from './tokens.js';

/** Turns a bearer credential (access JWT, API key or external OIDC token) into a principal. */
export interface Authenticator {
  authenticate(bearer: string): Promise<Authenticated>;
  /** Effective permissions of a role list in a tenant (built-in + custom roles). */
  permissionsFor(input: { isSuperAdmin: boolean; roles: string[]; customPermissions: string[] }): Set<string>;
}

// API keys record last use at most once a minute, so a busy key is not a write per request.
const LAST_USED_RESOLUTION_MS = 60_000;

export function createAuthenticator(options: {
  db: Kysely<IdentityTables>;
  tokens: TokenIssuer;
  oidc: OidcVerifier;
  registry: PermissionRegistry;
  logger: Logger;
  cache: PrincipalCache;
}): Authenticator {
  const { db, tokens, oidc, registry, logger, cache } = options;

  const permissionsFor: Authenticator['permissionsFor'] = (input) => registry.permissionsOf(input);

  // the two lookups behind every authenticated request, planned once (issue 12)
  const sessionLookup = prepareQuery('identity.principal_by_session', (sid: string, sub: string) =>
    db
      .selectFrom('core.sessions as s')
      .innerJoin('core.users as u', 'u.id', 's.user_id')
      .leftJoin('core.tenants as t', 't.id', 'u.tenant_id')
      .select([
        's.revoked_at',
        's.expires_at',
        'u.id',
        'u.status',
        'u.is_super_admin',
        'u.roles',
        't.id as tenant_id',
        't.slug as tenant_slug',
        't.status as tenant_status',
        't.settings as tenant_settings',
        sql<string[][]>`(select coalesce(jsonb_agg(r.permissions), '[]'::jsonb) from core.roles r
          where r.tenant_id = u.tenant_id and u.roles ? r.key)`.as('custom_permissions'),
      ])
      .where('s.id', '=', sid)
      .where('u.id', '=', sub),
  );
  const apiKeyLookup = prepareQuery('identity.api_key_by_prefix', (prefix: string) =>
    // one round trip: the key, its tenant, and its creator's current roles and custom-role
    // permissions, since a key is worth no more than its creator is today
    db
      .selectFrom('core.api_keys as k')
      .innerJoin('core.tenants as t', 't.id', 'k.tenant_id')
      .leftJoin('core.users as u', 'u.id', 'k.created_by')
      .select([
        'k.id',
        'k.hash',
        'k.permissions',
        'k.created_by',
        'k.expires_at',
        'k.revoked_at',
        'k.last_used_at',
        't.id as tenant_id',
        't.slug as tenant_slug',
        't.status as tenant_status',
        't.settings as tenant_settings',
        'u.tenant_id as creator_tenant_id',
        'u.status as creator_status',
        'u.is_super_admin as creator_is_super_admin',
        'u.roles as creator_roles',
        sql<string[][]>`(select coalesce(jsonb_agg(r.permissions), '[]'::jsonb) from core.roles r
          where r.tenant_id = k.tenant_id and u.roles ? r.key)`.as('creator_custom_permissions'),
      ])
      .where('k.prefix', '=', prefix),
  );

  const fromClaims = async (claims: AccessClaims): Promise<Authenticated> => {
    // the key names the session, its user and its tenant: an entry is only ever served for
    // the very claims it was resolved from, so no credential gets another's principal
    const key = `s:${claims.sid}:${claims.sub}:${claims.tid ?? ''}`;
    const cached = cache.get(key);
    if (cached) return cached;
    const mark = cache.mark();
    const [row] = await sessionLookup.execute(db, claims.sid, claims.sub);
    if (!row || row.revoked_at) throw new PlexicaError('PLX_AUTH_SESSION_REVOKED');
    if ((row.tenant_id ?? undefined) !== claims.tid) throw new PlexicaError('PLX_AUTH_TOKEN_INVALID');
    if (row.status !== 'active') throw new PlexicaError('PLX_AUTH_USER_DISABLED');
    assertTenantUsable(row.tenant_status);
    const resolved: Authenticated = {
      principal: {
        type: 'user',
        id: row.id,
        userId: row.id,
        isSuperAdmin: row.is_super_admin,
        roles: row.roles,
        permissions: permissionsFor({
          isSuperAdmin: row.is_super_admin,
          roles: row.roles,
          customPermissions: row.custom_permissions.flat(),
        }),
        sessionId: claims.sid,
      },
      tenant:
        row.tenant_id && row.tenant_slug
          ? toTenantRef({ id: row.tenant_id, slug: row.tenant_slug, settings: row.tenant_settings ?? {} })
          : null,
    };
    cache.set(
      key,
      resolved,
      [
        { kind: 'session', id: claims.sid },
        { kind: 'user', id: row.id },
        ...(row.tenant_id ? [{ kind: 'tenant' as const, id: row.tenant_id }] : []),
      ],
      mark,
    );
    return resolved;
  };

  const fromApiKey = async (token: string): Promise<Authenticated> => {
    const parsed = parseApiKey(token);
    if (!parsed) throw new PlexicaError('PLX_AUTH_API_KEY_INVALID');
    // keyed by a hash of the whole key, secret included: a wrong secret never meets an entry
    const presented = createHash('sha256').update(parsed.secret).digest();
    const key = `k:${parsed.prefix}:${presented.toString('hex')}`;
    const cached = cache.get(key);
    if (cached) return cached;
    const mark = cache.mark();
    const [row] = await apiKeyLookup.execute(db, parsed.prefix);
    if (!row || !timingSafeEqual(presented, Buffer.from(row.hash, 'hex'))) {
      throw new PlexicaError('PLX_AUTH_API_KEY_INVALID');
    }
    if (row.revoked_at)
      throw new PlexicaError('PLX_AUTH_API_KEY_INVALID', { detail: 'API key has been revoked' });
    if (row.expires_at && new Date(row.expires_at) <= new Date()) {
      throw new PlexicaError('PLX_AUTH_API_KEY_INVALID', { detail: 'API key has expired' });
    }
    // Deleting a user sets created_by to null (the key row stays for the audit trail), so a key
    // without a creator is dead; so is one whose creator is disabled, or (never expected, as
    // users do not move, but cheap to refuse) whose creator is a user of another tenant. Super
    // admins create keys in any tenant they name.
    if (row.created_by === null || row.creator_status === null || row.creator_roles === null) {
      throw new PlexicaError('PLX_AUTH_API_KEY_INVALID', { detail: "API key's creator no longer exists" });
    }
    if (row.creator_status !== 'active') {
      throw new PlexicaError('PLX_AUTH_API_KEY_INVALID', { detail: "API key's creator is disabled" });
    }
    if (!row.creator_is_super_admin && row.creator_tenant_id !== row.tenant_id) {
      throw new PlexicaError('PLX_AUTH_API_KEY_INVALID', {
        detail: "API key's creator is not a user of its tenant",
      });
    }
    assertTenantUsable(row.tenant_status);
    if (!row.last_used_at || Date.now() - row.last_used_at.getTime() > LAST_USED_RESOLUTION_MS) {
      db.updateTable('core.api_keys')
        .set({ last_used_at: new Date() })
        .where('id', '=', row.id)
        .execute()
        .catch((err: unknown) =>
          logger.error({ err, apiKeyId: row.id }, 'recording API key last use failed'),
        );
    }
    const resolved: Authenticated = {
      principal: apiKeyPrincipal({
        id: row.id,
        keyPermissions: row.permissions,
        creator: {
          id: row.created_by,
          isSuperAdmin: row.creator_is_super_admin ?? false,
          roles: row.creator_roles,
          customPermissions: row.creator_custom_permissions.flat(),
        },
      }),
      tenant: toTenantRef({ id: row.tenant_id, slug: row.tenant_slug, settings: row.tenant_settings }),
    };
    cache.set(
      key,
      resolved,
      [
        { kind: 'api_key', id: row.id },
        { kind: 'user', id: row.created_by },
        { kind: 'tenant', id: row.tenant_id },
      ],
      mark,
      row.expires_at ? new Date(row.expires_at).getTime() : undefined,
    );
    return resolved;
  };

  /**
   * What a key may do: the intersection of its own permissions and its creator's current ones
   * (a member's key loses what the member loses). Pure: no lookup, no clock.
   */
  const apiKeyPrincipal = (key: {
    id: string;
    keyPermissions: string[];
    creator: { id: string; isSuperAdmin: boolean; roles: string[]; customPermissions: string[] };
  }): Principal => {
    const creatorHolds = permissionsFor({
      isSuperAdmin: key.creator.isSuperAdmin,
      roles: key.creator.roles,
      customPermissions: key.creator.customPermissions,
    });
    return {
      type: 'api_key',
      id: key.id,
      userId: key.creator.id,
      isSuperAdmin: false,
      roles: [],
      // keys registered later or removed since creation grant nothing, nor do platform keys
      permissions: new Set(
        key.keyPermissions.filter((k) => registry.get(k)?.scope === 'tenant' && creatorHolds.has(k)),
      ),
      sessionId: null,
    };
  };

  return {
    permissionsFor,
    async authenticate(bearer) {
      if (bearer.startsWith('plx_')) return fromApiKey(bearer);
      // a token that verified before is not decoded again
      const known = tokens.known(bearer);
      if (known) return fromClaims(known);
      let issuer: string | undefined;
      try {
        issuer = decodeJwt(bearer).iss;
      } catch (err) {
        throw new PlexicaError('PLX_AUTH_TOKEN_INVALID', {
          detail: 'bearer token is not a JWT or an API key',
          cause: err,
        });
      }
      if (issuer === TOKEN_ISSUER) return fromClaims(await tokens.verify(bearer));
      if (!issuer) throw new PlexicaError('PLX_AUTH_TOKEN_INVALID', { detail: 'token has no issuer' });
      const external = await oidc.verify(bearer, issuer);
      return {
        ...external,
        principal: {
          ...external.principal,
          permissions: permissionsFor({
            isSuperAdmin: false,
            roles: external.principal.roles,
            customPermissions: external.customPermissions,
          }),
        },
      };
    },
  };
}
