import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import type { Executor } from '../../infra/database/index.js';
import { PlexicaError } from '../../infra/errors.js';
import type { MasterKey } from './master-key.js';
import type { SecretsTables } from './tables.js';

/**
 * Stores values that must be readable later (OIDC client secrets, signing
 * keys, later webhook and plugin secrets) with envelope encryption: each secret
 * has its own random data key (AES-256-GCM), and that key is wrapped by the
 * master key whose id is stored beside it. Rotating the master key re-wraps the
 * data keys only. Each ciphertext is bound to its row id, so rows cannot be
 * swapped.
 */
export interface SecretsService {
  /** Stores `value`; pass `db` when inside a transaction. @returns the secret id */
  create(input: { name: string; tenantId: string | null; value: string }, db?: Executor): Promise<string>;
  read(id: string, db?: Executor): Promise<string>;
  update(id: string, value: string, db?: Executor): Promise<void>;
  remove(id: string, db?: Executor): Promise<void>;
  /**
   * Re-wraps every data key under the newest master key. Secrets wrapped by a
   * key that is not configured are left as they are and listed in `failed`.
   */
  rotate(
    onProgress?: (done: number, total: number) => void,
  ): Promise<{ rewrapped: number; total: number; failed: { id: string; keyId: string }[] }>;
  /** Id of the master key new secrets are wrapped with. */
  readonly activeKeyId: string;
  /**
   * The master keys, newest first, for modules that derive their own keys from
   * them (the storage URL signer): the first signs, all of them verify.
   */
  readonly masterKeys: readonly MasterKey[];
}

const IV_BYTES = 12;
const TAG_BYTES = 16;

function seal(key: Buffer, plaintext: Buffer, aad: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
}

function open(key: Buffer, sealed: string, aad: string): Buffer {
  const raw = Buffer.from(sealed, 'base64');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
  return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
}

export function createSecretsService(database: Kysely<SecretsTables>, keys: MasterKey[]): SecretsService {
  const active = keys[0];
  if (!active) throw new Error('createSecretsService needs at least one master key');
  const byId = new Map(keys.map((k) => [k.id, k.key]));

  const unwrap = (row: { id: string; key_id: string; wrapped_key: string }): Buffer => {
    const master = byId.get(row.key_id);
    if (!master) {
      throw new PlexicaError('PLX_SECRET_UNDECRYPTABLE', {
        detail: `secret ${row.id} is wrapped by master key ${row.key_id}, which is not configured`,
      });
    }
    try {
      return open(master, row.wrapped_key, `${row.id}:${row.key_id}`);
    } catch (err) {
      throw new PlexicaError('PLX_SECRET_UNDECRYPTABLE', {
        detail: `secret ${row.id} failed authentication`,
        cause: err,
      });
    }
  };

  const encrypt = (id: string, value: string) => {
    const dataKey = randomBytes(32);
    return {
      key_id: active.id,
      wrapped_key: seal(active.key, dataKey, `${id}:${active.id}`),
      ciphertext: seal(dataKey, Buffer.from(value, 'utf8'), id),
    };
  };

  const load = async (id: string, db: Kysely<SecretsTables>) => {
    const row = await db
      .selectFrom('core.secrets')
      .select(['id', 'key_id', 'wrapped_key', 'ciphertext'])
      .where('id', '=', id)
      .executeTakeFirst();
    if (!row) throw new PlexicaError('PLX_SECRET_UNDECRYPTABLE', { detail: `secret ${id} does not exist` });
    return row;
  };

  return {
    activeKeyId: active.id,
    masterKeys: keys,
    async create({ name, tenantId, value }, db = database) {
      const id = (await sql<{ id: string }>`select gen_random_uuid() as id`.execute(db)).rows[0]!.id;
      await db
        .insertInto('core.secrets')
        .values({ id, name, tenant_id: tenantId, ...encrypt(id, value) })
        .execute();
      return id;
    },
    async read(id, db = database) {
      const row = await load(id, db);
      try {
        return open(unwrap(row), row.ciphertext, id).toString('utf8');
      } catch (err) {
        if (err instanceof PlexicaError) throw err;
        throw new PlexicaError('PLX_SECRET_UNDECRYPTABLE', {
          detail: `secret ${id} failed authentication`,
          cause: err,
        });
      }
    },
    async update(id, value, db = database) {
      await load(id, db);
      await db
        .updateTable('core.secrets')
        .set({ ...encrypt(id, value), updated_at: new Date() })
        .where('id', '=', id)
        .execute();
    },
    async remove(id, db = database) {
      await db.deleteFrom('core.secrets').where('id', '=', id).execute();
    },
    async rotate(onProgress) {
      const stale = await database
        .selectFrom('core.secrets')
        .select(['id', 'key_id', 'wrapped_key'])
        .where('key_id', '!=', active.id)
        .execute();
      let done = 0;
      let rewrapped = 0;
      const failed: { id: string; keyId: string }[] = [];
      for (const row of stale) {
        let dataKey: Buffer;
        try {
          dataKey = unwrap(row);
        } catch {
          failed.push({ id: row.id, keyId: row.key_id });
          done += 1;
          onProgress?.(done, stale.length);
          continue;
        }
        // the where-clause on key_id makes a concurrent rotation a no-op, not a corruption
        await database
          .updateTable('core.secrets')
          .set({ key_id: active.id, wrapped_key: seal(active.key, dataKey, `${row.id}:${active.id}`) })
          .where('id', '=', row.id)
          .where('key_id', '=', row.key_id)
          .execute();
        rewrapped += 1;
        done += 1;
        onProgress?.(done, stale.length);
      }
      return { rewrapped, total: stale.length, failed };
    },
  };
}
