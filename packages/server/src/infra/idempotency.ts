import { type Kysely, sql } from 'kysely';
import type { Timestamp } from './database/columns.js';
import type { Migration } from './database/migrator.js';

export interface IdempotencyKeysTable {
  scope: string;
  key: string;
  fingerprint: string;
  status_code: number | null;
  content_type: string | null;
  body: string | null;
  created_at: Timestamp;
  expires_at: Date | string;
}

interface IdempotencyTables {
  'core.idempotency_keys': IdempotencyKeysTable;
}

export const idempotencyMigrations: Migration[] = [
  {
    id: 'kernel/0001_idempotency',
    replaces: '0004_idempotency',
    async up(db) {
      await sql`create table core.idempotency_keys (
        scope text not null,
        key text not null,
        fingerprint text not null,
        status_code integer,
        content_type text,
        body text,
        created_at timestamptz not null default now(),
        expires_at timestamptz not null,
        primary key (scope, key)
      )`.execute(db);
      await sql`create index idempotency_keys_expires on core.idempotency_keys (expires_at)`.execute(db);
    },
  },
];

export interface StoredResponse {
  statusCode: number;
  contentType: string | null;
  body: string;
}

export type IdempotencyClaim =
  | { state: 'new' }
  | { state: 'in_progress' }
  | { state: 'mismatch' }
  | { state: 'done'; response: StoredResponse };

/**
 * Remembers the response to a request made with an `Idempotency-Key`, per
 * caller (`scope`), so a retried create returns the first result instead of
 * creating twice. Rows live in `core.idempotency_keys` until they expire.
 */
export interface IdempotencyStore {
  claim(scope: string, key: string, fingerprint: string): Promise<IdempotencyClaim>;
  complete(scope: string, key: string, response: StoredResponse): Promise<void>;
  /** Forgets a claim whose request failed on our side, so the client may retry. */
  release(scope: string, key: string): Promise<void>;
  purgeExpired(now?: Date): Promise<number>;
}

export function createIdempotencyStore(db: Kysely<IdempotencyTables>, ttlSeconds: number): IdempotencyStore {
  const table = 'core.idempotency_keys' as const;
  return {
    async claim(scope, key, fingerprint) {
      const inserted = await db
        .insertInto(table)
        .values({ scope, key, fingerprint, expires_at: new Date(Date.now() + ttlSeconds * 1000) })
        .onConflict((oc) => oc.columns(['scope', 'key']).doNothing())
        .returning('key')
        .executeTakeFirst();
      if (inserted) return { state: 'new' };
      const row = await db
        .selectFrom(table)
        .select(['fingerprint', 'status_code', 'content_type', 'body'])
        .where('scope', '=', scope)
        .where('key', '=', key)
        .executeTakeFirst();
      // released between our insert and select: let the client retry
      if (!row) return { state: 'in_progress' };
      if (row.fingerprint !== fingerprint) return { state: 'mismatch' };
      if (row.status_code === null || row.body === null) return { state: 'in_progress' };
      return {
        state: 'done',
        response: { statusCode: row.status_code, contentType: row.content_type, body: row.body },
      };
    },
    async complete(scope, key, response) {
      await db
        .updateTable(table)
        .set({ status_code: response.statusCode, content_type: response.contentType, body: response.body })
        .where('scope', '=', scope)
        .where('key', '=', key)
        .execute();
    },
    async release(scope, key) {
      await db.deleteFrom(table).where('scope', '=', scope).where('key', '=', key).execute();
    },
    async purgeExpired(now = new Date()) {
      const result = await db.deleteFrom(table).where('expires_at', '<=', now).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
