import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { ConfigError } from '../../infra/options.js';
import type { SecretsConfig } from './config.js';

export interface MasterKey {
  /** Derived from the key material, so no one has to name keys. */
  id: string;
  key: Buffer;
}

export const masterKeyId = (key: Buffer): string =>
  createHash('sha256').update(key).digest('hex').slice(0, 16);

function parseKey(text: string): Buffer {
  const key = Buffer.from(text, 'base64');
  if (key.length !== 32) {
    throw new ConfigError([
      'PLEXICA_MASTER_KEY: each key must be 32 random bytes in base64 (e.g. `openssl rand -base64 32`)',
    ]);
  }
  return key;
}

/**
 * The master keys, newest first. From configuration when given; in embedded
 * mode, generated once into `<dataDir>/keys/master.key` (0600) and reused after.
 * With an external database there is no safe place to invent one, so it is
 * required: a key generated at start-up would make the data unreadable later.
 */
export async function resolveMasterKeys(
  config: SecretsConfig & { databaseUrl: string | undefined; dataDir: string },
  logger: Logger,
  /** How many secrets are stored already: a missing key file beside them is lost, not new. */
  storedSecrets: () => Promise<number> = async () => 0,
): Promise<MasterKey[]> {
  if (config.masterKey.length > 0) {
    return config.masterKey.map((text) => {
      const key = parseKey(text);
      return { id: masterKeyId(key), key };
    });
  }
  if (config.databaseUrl) {
    throw new ConfigError([
      'PLEXICA_MASTER_KEY: required when PLEXICA_DATABASE_URL is set (generate one with `openssl rand -base64 32`)',
    ]);
  }
  const dir = path.join(config.dataDir, 'keys');
  const file = path.join(dir, 'master.key');
  let text: string;
  try {
    text = (await readFile(file, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const stored = await storedSecrets();
    if (stored > 0) {
      // a new key beside them would leave every one undecryptable, and hide that the old one is lost
      throw new ConfigError([
        `${file} is missing, but ${stored} secret(s) encrypted with it are stored: restore the file ` +
          'from a backup of the data dir, or set PLEXICA_MASTER_KEY to that key',
      ]);
    }
    await mkdir(dir, { recursive: true, mode: 0o700 });
    text = randomBytes(32).toString('base64');
    await writeFile(file, `${text}\n`, { mode: 0o600, flag: 'wx' });
    logger.warn({ file }, 'generated a new master key; back it up: encrypted data cannot be read without it');
  }
  await chmod(file, 0o600);
  const key = parseKey(text);
  return [{ id: masterKeyId(key), key }];
}
