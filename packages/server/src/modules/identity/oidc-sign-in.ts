import type { JWTPayload } from 'jose';
import type { Kysely, Selectable, Transaction } from 'kysely';
import { PlexicaError } from '../../infra/errors.js';
import { normalizeEmail } from './passwords.js';
import type { IdentityProvidersTable, IdentityTables } from './tables.js';

/** Reads `a.b.c` from a claims object. */
export const claimAt = (payload: JWTPayload, path: string): unknown =>
  path
    .split('.')
    .reduce<unknown>((value, part) => (value as Record<string, unknown> | undefined)?.[part], payload);

/** The tenant roles a token maps to: the provider's defaults plus its role mapping. */
export function mappedRoles(provider: Selectable<IdentityProvidersTable>, payload: JWTPayload): string[] {
  const external = claimAt(payload, provider.roles_claim);
  const mapped = (Array.isArray(external) ? external : [])
    .map((role) => provider.role_mapping[String(role)])
    .filter((role): role is string => typeof role === 'string');
  return [...new Set([...provider.default_roles, ...mapped])].sort();
}

const sameRoles = (a: string[], b: string[]) => a.length === b.length && a.every((role, i) => role === b[i]);

/**
 * Signs a verified IdP token in as a tenant user (issue 9 item 1):
 * - the user is found by (tenant, issuer, sub) only, never by email;
 * - a subject seen for the first time creates a user (`jit`), which needs
 *   `email_verified: true`; if a user with that email exists, the sign-in is
 *   refused (`PLX_OIDC_ACCOUNT_NOT_LINKED`) until that account is linked by
 *   itself or an admin;
 * - roles follow the IdP only for users the IdP created; a linked account keeps
 *   its own roles.
 */
export async function signInExternal(
  db: Kysely<IdentityTables>,
  provider: Selectable<IdentityProvidersTable>,
  payload: JWTPayload & { sub: string },
): Promise<{ id: string; roles: string[] }> {
  const tenantId = provider.tenant_id;
  const roles = mappedRoles(provider, payload);

  const signInKnown = async (trx: Transaction<IdentityTables>) => {
    const known = await trx
      .selectFrom('core.user_identities as i')
      .innerJoin('core.users as u', 'u.id', 'i.user_id')
      .select(['i.id as identity_id', 'i.origin', 'u.id', 'u.status', 'u.roles'])
      .where('i.tenant_id', '=', tenantId)
      .where('i.issuer', '=', provider.issuer)
      .where('i.subject', '=', payload.sub)
      .executeTakeFirst();
    if (!known) return undefined;
    // attached by email before 0007 (perhaps by an attacker): only an explicit link revives it
    if (known.origin === 'legacy') throw new PlexicaError('PLX_OIDC_ACCOUNT_NOT_LINKED');
    if (known.status !== 'active') throw new PlexicaError('PLX_AUTH_USER_DISABLED');
    const followIdp = known.origin === 'jit';
    const now = new Date();
    await trx
      .updateTable('core.users')
      .set({
        last_login_at: now,
        ...(followIdp && !sameRoles(known.roles, roles) && { roles: JSON.stringify(roles), updated_at: now }),
      })
      .where('id', '=', known.id)
      .execute();
    await trx
      .updateTable('core.user_identities')
      .set({ last_login_at: now })
      .where('id', '=', known.identity_id)
      .execute();
    return { id: known.id, roles: followIdp ? roles : known.roles };
  };

  return db.transaction().execute(async (trx) => {
    const known = await signInKnown(trx);
    if (known) return known;

    // OIDC Core §5.1: email is the user's claim, email_verified says whether the IdP checked it
    if (payload.email_verified !== true) throw new PlexicaError('PLX_OIDC_EMAIL_NOT_VERIFIED');
    const email = claimAt(payload, provider.email_claim);
    if (typeof email !== 'string' || !/^[^@\s]+@[^@\s]+$/.test(email) || email.length > 320) {
      throw new PlexicaError('PLX_AUTH_TOKEN_INVALID', {
        detail: `token claim ${provider.email_claim} is missing or not an email address`,
      });
    }
    const created = await trx
      .insertInto('core.users')
      .values({
        tenant_id: tenantId,
        email,
        email_normalized: normalizeEmail(email),
        external_subject: payload.sub,
        roles: JSON.stringify(roles),
        last_login_at: new Date(),
      })
      .onConflict((oc) => oc.constraint('users_tenant_email').doNothing())
      .returning('id')
      .executeTakeFirst();
    if (!created) {
      // a concurrent first sign-in of the same subject may have created it meanwhile
      const raced = await signInKnown(trx);
      if (raced) return raced;
      throw new PlexicaError('PLX_OIDC_ACCOUNT_NOT_LINKED');
    }
    const identity = await trx
      .insertInto('core.user_identities')
      .values({
        tenant_id: tenantId,
        user_id: created.id,
        issuer: provider.issuer,
        subject: payload.sub,
        origin: 'jit',
        last_login_at: new Date(),
      })
      .onConflict((oc) => oc.constraint('user_identities_subject').doNothing())
      .returning('id')
      .executeTakeFirst();
    // the same subject signed in concurrently under another email: this one rolls back
    if (!identity) throw new PlexicaError('PLX_CONFLICT', { detail: 'concurrent first sign-in, retry' });
    return { id: created.id, roles };
  });
}
