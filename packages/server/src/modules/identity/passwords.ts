import argon2 from 'argon2';
import { PlexicaError } from '../../infra/errors.js';

/** Argon2id with the library's defaults (64 MiB, t=3): the OWASP-recommended family. */
export const hashPassword = (password: string): Promise<string> =>
  argon2.hash(password, { type: argon2.argon2id });

// Verifying against this when the user does not exist keeps login timing flat,
// so response time does not reveal which emails have accounts.
let dummyHash: Promise<string> | undefined;

export async function verifyPassword(hash: string | null | undefined, password: string): Promise<boolean> {
  if (!hash) {
    dummyHash ??= hashPassword('plexica-timing-equaliser');
    await argon2.verify(await dummyHash, password);
    return false;
  }
  return argon2.verify(hash, password);
}

/** At least 10 characters and not one repeated character; at most 256 (argon2 input bound). */
export function assertPasswordPolicy(password: string, field = 'password'): void {
  const fail = (message: string) =>
    new PlexicaError('PLX_PASSWORD_TOO_WEAK', { detail: message, errors: [{ field, message }] });
  if (password.length < 10) throw fail('password must be at least 10 characters');
  if (password.length > 256) throw fail('password must be at most 256 characters');
  if (new Set(password).size < 4) throw fail('password must use at least 4 different characters');
}

export const normalizeEmail = (email: string): string => email.trim().toLowerCase();
