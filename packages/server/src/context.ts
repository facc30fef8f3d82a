import type { TenantSettings } from './infra/database/tables.js';
import { PlexicaError } from './infra/errors.js';

/**
 * Who is calling and in which tenant: resolved once per request from the
 * credential and passed explicitly into every service call (never through
 * AsyncLocalStorage or a session-level `search_path`).
 */
export interface Principal {
  type: 'user' | 'api_key';
  /** User id, or API key id for an API key. */
  id: string;
  /** The user behind the credential (the creator, for an API key). */
  userId: string | null;
  isSuperAdmin: boolean;
  roles: string[];
  permissions: ReadonlySet<string>;
  sessionId: string | null;
}

export interface TenantRef {
  id: string;
  slug: string;
  /** `tenant_{slug}` with `-` → `_`. */
  schema: string;
  settings: TenantSettings;
}

export interface RequestContext {
  traceId: string;
  principal: Principal | null;
  tenant: TenantRef | null;
}

/** A context for work that no request started (CLI, scheduler, bootstrap). */
export const systemContext = (traceId: string, tenant: TenantRef | null = null): RequestContext => ({
  traceId,
  principal: null,
  tenant,
});

/** The tenant the request acts in, or a precise error for a super admin who named none. */
export function requireTenant(ctx: RequestContext): TenantRef {
  if (!ctx.tenant) {
    throw new PlexicaError('PLX_TENANT_REQUIRED', { detail: 'name the tenant with the X-Tenant-ID header' });
  }
  return ctx.tenant;
}
