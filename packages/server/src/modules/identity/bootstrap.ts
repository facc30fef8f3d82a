import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { isUniqueViolation } from '../../infra/database/errors.js';
import type { IdentityConfig } from './config.js';
import { hashPassword, normalizeEmail } from './passwords.js';
import type { IdentityTables } from './tables.js';

/** Who the first start made super admin; `generatedPassword` when it chose the password. */
export interface Bootstrap {
  email: string;
  generatedPassword?: string;
}

/**
 * The first start creates a super admin: credentials from PLEXICA_ADMIN_EMAIL /
 * PLEXICA_ADMIN_PASSWORD, or a generated password printed once.
 */
export async function bootstrapSuperAdmin(
  db: Kysely<IdentityTables>,
  config: Pick<IdentityConfig, 'adminEmail' | 'adminPassword'>,
  logger: Logger,
): Promise<Bootstrap | undefined> {
  const existing = await db
    .selectFrom('core.users')
    .select('id')
    .where('is_super_admin', '=', true)
    .limit(1)
    .executeTakeFirst();
  if (existing) {
    // an env password on an existing install would otherwise be silently ignored
    if (config.adminPassword) {
      logger.warn(
        'PLEXICA_ADMIN_PASSWORD is set but a super admin exists already, so it is ignored; ' +
          'to recover a lost password run: plexica admin reset-password <email>',
      );
    }
    return undefined;
  }
  const email = config.adminEmail ?? 'admin@plexica.local';
  const generated = config.adminPassword ? undefined : randomBytes(18).toString('base64url');
  const password = config.adminPassword ?? generated!;
  try {
    await db
      .insertInto('core.users')
      .values({
        tenant_id: null,
        email,
        email_normalized: normalizeEmail(email),
        password_hash: await hashPassword(password),
        is_super_admin: true,
        roles: JSON.stringify(['super_admin']),
        display_name: 'Super admin',
      })
      .execute();
  } catch (err) {
    if (isUniqueViolation(err)) return undefined; // another instance won the race
    throw err;
  }
  if (generated) {
    logger.warn({ email }, 'created the super admin with a generated password (printed once to stderr)');
    process.stderr.write(
      `\n  Plexica super admin: ${email}\n  password: ${generated}\n  (shown once; set PLEXICA_ADMIN_PASSWORD to choose it)\n\n`,
    );
  } else {
    logger.info({ email }, 'created the super admin from PLEXICA_ADMIN_EMAIL/PLEXICA_ADMIN_PASSWORD');
  }
  return { email, ...(generated && { generatedPassword: generated }) };
}
