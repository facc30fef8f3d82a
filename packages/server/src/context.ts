import { randomUUID } from 'node:crypto';
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

/** A tenant's lifecycle state. */
export type TenantStatus = 'active' | 'suspended' | 'deleted';

/** Per-tenant overrides of platform limits (`core.tenants.settings`). */
export interface TenantSettings {
  /** Requests per rate-limit window for each user/API key of this tenant. */
  rateLimitUser?: number;
  /** Requests per rate-limit window for the whole tenant. */
  rateLimitTenant?: number;
  /** Largest file this tenant may upload, in bytes (else PLEXICA_STORAGE_MAX_FILE_SIZE). */
  storageMaxFileSize?: number;
  /** Total bytes this tenant may store; 0 = unlimited (else PLEXICA_STORAGE_QUOTA). */
  storageQuotaBytes?: number;
  /** Events it may publish through the API per 15 minutes (else PLEXICA_EVENTS_PUBLISH_RATE_LIMIT). */
  rateLimitEventsPublish?: number;
  /** Webhook management calls per 15 minutes (else PLEXICA_WEBHOOKS_MANAGE_RATE_LIMIT). */
  rateLimitWebhooksManage?: number;
}

export interface TenantRef {
  id: string;
  slug: string;
  /** `tenant_{slug}` with `-` → `_`. */
  schema: string;
  settings: TenantSettings;
}

export interface RequestContext {
  /** X-Trace-ID as the client sent it (when its shape is valid), else made by the server. */
  traceId: string;
  principal: Principal | null;
  tenant: TenantRef | null;
  /**
   * Made by the server for this request and never taken from the client, so the
   * audit log has a correlation id nobody outside chose (equal to `traceId`
   * when the client sent no X-Trace-ID). Absent outside HTTP requests.
   */
  requestId?: string;
  /** The client's address as the server sees it (after the trust-proxy rules). */
  ip?: string;
  /**
   * The credential when the principal does not tell it: a signed URL (no principal stands
   * behind it) or a password presented at login.
   */
  credential?: 'signed_url' | 'password';
}

/**
 * The request facts the guard puts in every context (`traceId`, `requestId`,
 * `ip`). Structural, so the context does not depend on Fastify.
 */
export function requestFacts(request: {
  id: string;
  ip: string;
  headers: Record<string, string | string[] | undefined>;
}): Pick<RequestContext, 'traceId' | 'requestId' | 'ip'> {
  // request.id is the client's X-Trace-ID when it sent a valid one: then make our own
  const clientChosen = request.headers['x-trace-id'] === request.id;
  return { traceId: request.id, requestId: clientChosen ? randomUUID() : request.id, ip: request.ip };
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

export interface Authenticated {
  principal: Principal;
  /** The credential's own tenant; null for a super admin. */
  tenant: TenantRef | null;
}

/** `acme-corp` → `tenant_acme_corp` (`_` is not allowed in slugs, so this is one-to-one). */
export const tenantSchemaName = (slug: string): string => `tenant_${slug.replaceAll('-', '_')}`;

export const toTenantRef = (t: { id: string; slug: string; settings: TenantSettings }): TenantRef => ({
  id: t.id,
  slug: t.slug,
  schema: tenantSchemaName(t.slug),
  settings: t.settings,
});

/** Why a tenant in `status` cannot be used (suspended or deleted), or undefined when it can. */
export function tenantUnusableError(status: TenantStatus | null | undefined): PlexicaError | undefined {
  if (status === 'suspended') return new PlexicaError('PLX_TENANT_SUSPENDED');
  if (status === 'deleted') return new PlexicaError('PLX_TENANT_DELETED');
  return undefined;
}

export function assertTenantUsable(status: TenantStatus | null | undefined): void {
  const error = tenantUnusableError(status);
  if (error) throw error;
}
