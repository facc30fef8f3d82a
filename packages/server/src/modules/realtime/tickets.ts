import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import type { Executor } from '../../infra/database/index.js';
import { PlexicaError } from '../../infra/errors.js';
import type { RealtimeTables } from './tables.js';

const PREFIX = 'rtk_';
const TICKET = /^rtk_[A-Za-z0-9_-]{43}$/;

/**
 * One-time, short-lived stream tickets for browsers (a WebSocket or an
 * EventSource cannot carry an Authorization header, and a long-lived token in
 * a URL lands in logs). The row holds a hash of the ticket and the credential
 * sealed (AES-256-GCM) under a key derived from the ticket, so the database
 * alone opens nothing; redeeming deletes the row, so a second use finds none,
 * on any instance.
 */
export interface StreamTickets {
  mint(credential: string, ttlSeconds: number): Promise<{ ticket: string; expiresAt: string }>;
  /** @returns the credential the ticket was minted for */
  redeem(ticket: string): Promise<string>;
  purgeExpired(): Promise<number>;
}

const idOf = (ticket: string) => createHash('sha256').update(ticket).digest('hex');
const keyOf = (ticket: string) =>
  Buffer.from(hkdfSync('sha256', Buffer.from(ticket), Buffer.alloc(0), 'plexica realtime ticket', 32));

export function createStreamTickets(executor: Executor): StreamTickets {
  const db = executor as unknown as Kysely<RealtimeTables>;
  const invalid = () => new PlexicaError('PLX_REALTIME_TICKET_INVALID');
  return {
    async mint(credential, ttlSeconds) {
      const ticket = PREFIX + randomBytes(32).toString('base64url');
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', keyOf(ticket), iv);
      const sealed = Buffer.concat([
        iv,
        cipher.update(credential, 'utf8'),
        cipher.final(),
        cipher.getAuthTag(),
      ]);
      const expiresAt = new Date(Date.now() + ttlSeconds * 1000);
      await db
        .insertInto('core.realtime_tickets')
        .values({ id: idOf(ticket), sealed: sealed.toString('base64'), expires_at: expiresAt })
        .execute();
      return { ticket, expiresAt: expiresAt.toISOString() };
    },
    async redeem(ticket) {
      if (!TICKET.test(ticket)) throw invalid();
      const row = await db
        .deleteFrom('core.realtime_tickets')
        .where('id', '=', idOf(ticket))
        .returning(['sealed', 'expires_at'])
        .executeTakeFirst();
      if (!row) throw invalid();
      if (row.expires_at.getTime() <= Date.now()) throw new PlexicaError('PLX_REALTIME_TICKET_EXPIRED');
      const sealed = Buffer.from(row.sealed, 'base64');
      const decipher = createDecipheriv('aes-256-gcm', keyOf(ticket), sealed.subarray(0, 12));
      decipher.setAuthTag(sealed.subarray(sealed.length - 16));
      return Buffer.concat([
        decipher.update(sealed.subarray(12, sealed.length - 16)),
        decipher.final(),
      ]).toString('utf8');
    },
    async purgeExpired() {
      const result = await sql`delete from core.realtime_tickets where expires_at < now()`.execute(db);
      return Number(result.numAffectedRows ?? 0n);
    },
  };
}
