import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import {
  assertTenantUsable,
  type Principal,
  type RequestContext,
  type TenantRef,
  tenantUnusableError,
  toTenantRef,
} from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import { inTransaction } from '../../infra/database/transaction.js';
import { PlexicaError } from '../../infra/errors.js';
import { type LoginFailures, loginAccountKey } from '../../infra/rate-limit/login-failures.js';
import { rateLimitedError } from '../../infra/rate-limit/store.js';
import type { AuditService } from '../audit/index.js';
import type { TenantsService } from '../tenants/index.js';
import { normalizeEmail, verifyPassword } from './passwords.js';
import type { PrincipalCache } from './principal-cache.js';
import type { IdentityTables } from './tables.js';
import type { TokenIssuer } from './tokens.js';

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  /** Access token lifetime in seconds. */
  expiresIn: number;
  tokenType: 'Bearer';
}

export interface SessionInfo {
  id: string;
  kind: string;
  userAgent: string | null;
  ip: string | null;
  createdAt: string;
  lastUsedAt: string;
  expiresAt: string;
  current: boolean;
}

export interface ClientInfo {
  userAgent?: string | undefined;
  ip?: string | undefined;
}

/** Password login, refresh-token rotation with reuse detection, logout, session listing. */
export interface SessionsService {
  /**
   * A tenant login's success and failure go to the tenant's audit log; an
   * account with too many failures in the window is refused with 429 before
   * its password is checked.
   */
  login(
    ctx: RequestContext,
    input: { email: string; password: string; tenant?: string },
    client: ClientInfo,
  ): Promise<TokenPair>;
  refresh(refreshToken: string): Promise<TokenPair>;
  /** Revokes the session behind `refreshToken`, or the caller's own session. */
  logout(ctx: RequestContext, refreshToken?: string): Promise<void>;
  list(ctx: RequestContext, userId: string): Promise<SessionInfo[]>;
  revoke(ctx: RequestContext, userId: string, sessionId: string): Promise<void>;
  /**
   * Revokes every session of a user (password change, disable, delete), but
   * `exceptSessionId`. Given a transaction, the caller invalidates the user's
   * cached principals after its commit.
   */
  revokeAll(userId: string, db?: Executor, exceptSessionId?: string): Promise<void>;
}

const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');
const newRefreshToken = (): string => `plxr_${randomBytes(32).toString('base64url')}`;

export function createSessionsService(options: {
  db: Kysely<IdentityTables>;
  tokens: TokenIssuer;
  tenants: TenantsService;
  audit: AuditService;
  loginFailures: LoginFailures;
  refreshTtlSeconds: number;
  /** Told of every change that makes a resolved principal stale (after it committed). */
  principals: Pick<PrincipalCache, 'invalidate'>;
}): SessionsService {
  const { db, tokens, tenants, audit, loginFailures, refreshTtlSeconds, principals } = options;

  const issue = async (
    trx: Kysely<IdentityTables>,
    session: { id: string; user_id: string; tenant_id: string | null },
  ) => {
    const refreshToken = newRefreshToken();
    await trx
      .insertInto('core.refresh_tokens')
      .values({ hash: hashToken(refreshToken), session_id: session.id })
      .execute();
    const accessToken = await tokens.sign({
      sub: session.user_id,
      sid: session.id,
      ...(session.tenant_id && { tid: session.tenant_id }),
    });
    return { accessToken, refreshToken, expiresIn: tokens.ttlSeconds, tokenType: 'Bearer' as const };
  };

  return {
    async login(ctx, { email, password, tenant: tenantName }, client) {
      const normalized = normalizeEmail(email);
      let tenant: TenantRef | null = null;
      let account = loginAccountKey('platform:', normalized);
      if (tenantName !== undefined) {
        const found = await tenants.find(tenantName);
        if (found) {
          assertTenantUsable(found.status);
          tenant = toTenantRef(found);
          account = loginAccountKey(`tenant:${found.slug}:`, normalized);
        } else {
          // counted like a real account, so a 429 never tells which tenants exist
          account = loginAccountKey('unknown-tenant:', `${tenantName.toLowerCase()}\n${normalized}`);
        }
      }
      // a tenant login is recorded in the tenant's log; platform logins have none to go to
      const recordFailure = async (data: Record<string, unknown>, targetId?: string) => {
        if (!tenant) return;
        await audit.record(
          { ...ctx, tenant, principal: null, credential: 'password' },
          { action: 'auth.login_failed', targetType: 'user', ...(targetId && { targetId }), data },
        );
      };
      const attempt = await loginFailures.attempt(account);
      if (attempt.locked) {
        // once per window, not once per refused try: the log must not become the flood
        if (attempt.justLocked) await recordFailure({ email: normalized, reason: 'account_locked' });
        throw rateLimitedError('too many failed logins for this account: try again later', attempt.resetInMs);
      }
      if (tenantName !== undefined && !tenant) {
        await verifyPassword(null, password);
        throw new PlexicaError('PLX_AUTH_INVALID_CREDENTIALS');
      }
      const user = await db
        .selectFrom('core.users')
        .select(['id', 'tenant_id', 'password_hash', 'status', 'is_super_admin', 'roles'])
        .where('email_normalized', '=', normalized)
        .where((eb) => (tenant ? eb('tenant_id', '=', tenant.id) : eb('tenant_id', 'is', null)))
        .executeTakeFirst();
      if (!(await verifyPassword(user?.password_hash, password)) || !user) {
        // the same record for an unknown email and a wrong password, as the response is the same
        await recordFailure({ email: normalized, reason: 'invalid_credentials' });
        // said whatever the account: without a tenant only super admins are looked up
        throw new PlexicaError(
          'PLX_AUTH_INVALID_CREDENTIALS',
          tenant
            ? {}
            : {
                detail:
                  'wrong email or password; a tenant user must name the tenant ("tenant": its slug or id)',
              },
        );
      }
      if (user.status !== 'active') {
        // the response already says the account exists and the password was right
        await recordFailure({ email: normalized, reason: 'user_disabled' }, user.id);
        throw new PlexicaError('PLX_AUTH_USER_DISABLED');
      }
      await loginFailures.succeeded(account);
      return inTransaction(db, async (tx) => {
        const session = await tx.db
          .insertInto('core.sessions')
          .values({
            user_id: user.id,
            tenant_id: user.tenant_id,
            kind: 'password',
            user_agent: client.userAgent?.slice(0, 512) ?? null,
            ip: client.ip ?? null,
            expires_at: new Date(Date.now() + refreshTtlSeconds * 1000),
          })
          .returning(['id', 'user_id', 'tenant_id'])
          .executeTakeFirstOrThrow();
        await tx.db
          .updateTable('core.users')
          .set({ last_login_at: new Date() })
          .where('id', '=', user.id)
          .execute();
        if (tenant) {
          // the actor of the record is the user now logged in (permissions are not needed to record)
          const actor: Principal = {
            type: 'user',
            id: user.id,
            userId: user.id,
            isSuperAdmin: user.is_super_admin,
            roles: user.roles,
            permissions: new Set(),
            sessionId: session.id,
          };
          await audit.record(
            { ...ctx, tenant, principal: actor, credential: 'password' },
            { action: 'auth.login', targetType: 'user', targetId: user.id, data: { sessionId: session.id } },
            tx,
          );
        }
        return issue(tx.db, session);
      });
    },

    async refresh(refreshToken) {
      const hash = hashToken(refreshToken);
      const result = await db.transaction().execute(async (trx) => {
        const row = await trx
          .selectFrom('core.refresh_tokens as rt')
          .innerJoin('core.sessions as s', 's.id', 'rt.session_id')
          .innerJoin('core.users as u', 'u.id', 's.user_id')
          .leftJoin('core.tenants as t', 't.id', 's.tenant_id')
          .select([
            'rt.used_at',
            's.id',
            's.user_id',
            's.tenant_id',
            's.revoked_at',
            's.expires_at',
            'u.status as user_status',
            't.status as tenant_status',
          ])
          .where('rt.hash', '=', hash)
          .forUpdate('rt')
          .executeTakeFirst();
        if (!row)
          return { error: new PlexicaError('PLX_AUTH_TOKEN_INVALID', { detail: 'unknown refresh token' }) };
        if (row.revoked_at) return { error: new PlexicaError('PLX_AUTH_SESSION_REVOKED') };
        if (row.used_at) {
          // a rotated token came back: someone holds a copy, so end the whole session
          await trx
            .updateTable('core.sessions')
            .set({ revoked_at: new Date() })
            .where('id', '=', row.id)
            .execute();
          return {
            error: new PlexicaError('PLX_AUTH_REFRESH_REUSED', {
              detail: 'refresh token reuse: session revoked',
            }),
            revokedSession: row.id,
          };
        }
        if (new Date(row.expires_at) <= new Date())
          return { error: new PlexicaError('PLX_AUTH_TOKEN_EXPIRED') };
        if (row.user_status !== 'active') return { error: new PlexicaError('PLX_AUTH_USER_DISABLED') };
        const unusable = tenantUnusableError(row.tenant_status);
        if (unusable) return { error: unusable };
        await trx
          .updateTable('core.refresh_tokens')
          .set({ used_at: new Date() })
          .where('hash', '=', hash)
          .execute();
        await trx
          .updateTable('core.sessions')
          .set({ last_used_at: new Date() })
          .where('id', '=', row.id)
          .execute();
        return { pair: await issue(trx, row) };
      });
      // thrown after commit, so the reuse revocation is kept
      if ('revokedSession' in result && result.revokedSession)
        await principals.invalidate({ kind: 'session', id: result.revokedSession });
      if (result.error) throw result.error;
      return result.pair;
    },

    async logout(ctx, refreshToken) {
      let sessionId = ctx.principal?.sessionId ?? null;
      if (refreshToken) {
        const row = await db
          .selectFrom('core.refresh_tokens')
          .select('session_id')
          .where('hash', '=', hashToken(refreshToken))
          .executeTakeFirst();
        if (!row) throw new PlexicaError('PLX_AUTH_TOKEN_INVALID', { detail: 'unknown refresh token' });
        sessionId = row.session_id;
      }
      if (!sessionId)
        throw new PlexicaError('PLX_AUTH_REQUIRED', { detail: 'give a refresh token or an access token' });
      await db
        .updateTable('core.sessions')
        .set({ revoked_at: new Date() })
        .where('id', '=', sessionId)
        .where('revoked_at', 'is', null)
        .execute();
      await principals.invalidate({ kind: 'session', id: sessionId });
    },

    async list(ctx, userId) {
      const rows = await db
        .selectFrom('core.sessions')
        .selectAll()
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', new Date())
        .orderBy('created_at', 'desc')
        .execute();
      return rows.map((r) => ({
        id: r.id,
        kind: r.kind,
        userAgent: r.user_agent,
        ip: r.ip,
        createdAt: r.created_at.toISOString(),
        lastUsedAt: r.last_used_at.toISOString(),
        expiresAt: new Date(r.expires_at).toISOString(),
        current: r.id === ctx.principal?.sessionId,
      }));
    },

    async revoke(_ctx, userId, sessionId) {
      const result = await db
        .updateTable('core.sessions')
        .set({ revoked_at: new Date() })
        .where('id', '=', sessionId)
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 0) throw new PlexicaError('PLX_SESSION_NOT_FOUND');
      await principals.invalidate({ kind: 'session', id: sessionId });
    },

    async revokeAll(userId, trx = db, exceptSessionId) {
      let query = trx
        .updateTable('core.sessions')
        .set({ revoked_at: new Date() })
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null);
      if (exceptSessionId) query = query.where('id', '<>', exceptSessionId);
      await query.execute();
      // inside a caller's transaction, the caller tells the cache once it committed
      if (trx === db) await principals.invalidate({ kind: 'user', id: userId });
    },
  };
}
