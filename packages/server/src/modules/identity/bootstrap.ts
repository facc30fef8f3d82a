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
  userId: string;
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
  let userId: string;
  try {
    const row = await db
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
      .returning('id')
      .executeTakeFirstOrThrow();
    userId = row.id;
  } catch (err) {
    if (isUniqueViolation(err)) return undefined; // another instance won the race
    throw err;
  }
  logger.info(
    { email },
    generated
      ? 'created the super admin'
      : 'created the super admin from PLEXICA_ADMIN_EMAIL/PLEXICA_ADMIN_PASSWORD',
  );
  return { email, userId, ...(generated && { generatedPassword: generated }) };
}

/**
 * Prints a generated password, once: called when the start went through (the
 * port is bound), so a failed start never shows a password that is then lost.
 */
export function announceBootstrap(bootstrap: Bootstrap, logger: Logger): void {
  if (!bootstrap.generatedPassword) return;
  logger.warn(
    { email: bootstrap.email },
    'the super admin has a generated password (printed once to stderr)',
  );
  process.stderr.write(
    `\n  Plexica super admin: ${bootstrap.email}\n  password: ${bootstrap.generatedPassword}\n  (shown once; set PLEXICA_ADMIN_PASSWORD to choose it)\n\n`,
  );
}

/** Takes back a super admin this start created, when the start failed before announcing it. */
export async function undoBootstrap(db: Kysely<IdentityTables>, bootstrap: Bootstrap): Promise<void> {
  await db.deleteFrom('core.users').where('id', '=', bootstrap.userId).execute();
}
