import type { Logger } from 'pino';
import type { Authenticated } from '../../context.js';
import type { SignalChannel } from '../../infra/signals/index.js';

/** What a change makes stale: one session, API key, user (with their keys) or tenant. */
export interface PrincipalChange {
  kind: 'session' | 'api_key' | 'user' | 'tenant';
  id: string;
}

/**
 * Resolved principals and tenants per credential, for `ttlSeconds`: the
 * lookup behind every authenticated request (a join of sessions, users,
 * roles and tenants) runs once per credential per TTL instead of per request.
 *
 * A change (logout, revocation, roles, a disabled user, a suspended tenant)
 * drops what it touches here at once and on every other instance through
 * the cluster signal channel; a signal lost while the channel is down is
 * bounded by the TTL, and a channel that comes back drops everything.
 */
export interface PrincipalCache {
  /** The entry for `key` while fresh. */
  get(key: string): Authenticated | undefined;
  /** A mark to take before the lookup: `set` keeps nothing if a change came in between. */
  mark(): number;
  /** `until` (epoch ms) ends the entry before the TTL does: a credential's own expiry. */
  set(key: string, value: Authenticated, tags: PrincipalChange[], mark: number, until?: number): void;
  /**
   * Drops what `change` touches, here and on every instance. Call it after the
   * change has committed (before, a request could cache the old rows again).
   * Never rejects: a signal that cannot be sent is logged and bounded by the TTL.
   */
  invalidate(change: PrincipalChange): Promise<void>;
  readonly ttlSeconds: number;
  close(): void;
}

export const PRINCIPALS_CHANNEL = 'identity.principals';
// bounded memory: enough for every active credential of a large deployment
const MAX_ENTRIES = 50_000;

const tagOf = (change: PrincipalChange) => `${change.kind}:${change.id}`;

export function createPrincipalCache(options: {
  ttlSeconds: number;
  signals: SignalChannel;
  logger: Pick<Logger, 'warn'>;
}): PrincipalCache {
  const { ttlSeconds, signals, logger } = options;
  const ttlMs = ttlSeconds * 1000;
  const entries = new Map<string, { value: Authenticated; expires: number; tags: string[] }>();
  const byTag = new Map<string, Set<string>>();
  // bumped by every change: a lookup that started before it must not store what it read
  let generation = 0;

  const remove = (key: string) => {
    const entry = entries.get(key);
    if (!entry) return;
    entries.delete(key);
    for (const tag of entry.tags) {
      const keys = byTag.get(tag);
      keys?.delete(key);
      if (keys?.size === 0) byTag.delete(tag);
    }
  };
  const drop = (change: PrincipalChange) => {
    generation++;
    for (const key of [...(byTag.get(tagOf(change)) ?? [])]) remove(key);
  };
  const dropAll = () => {
    generation++;
    entries.clear();
    byTag.clear();
  };

  const offSignal = signals.subscribe(PRINCIPALS_CHANNEL, (payload) => {
    const change = payload as Partial<PrincipalChange> | null;
    if (change && typeof change.kind === 'string' && typeof change.id === 'string')
      drop(change as PrincipalChange);
    else dropAll();
  });
  const offResync = signals.onResync(dropAll);

  return {
    ttlSeconds,
    get(key) {
      const entry = entries.get(key);
      if (!entry) return undefined;
      if (entry.expires > Date.now()) return entry.value;
      remove(key);
      return undefined;
    },
    mark: () => generation,
    set(key, value, tags, mark, until = Number.POSITIVE_INFINITY) {
      if (ttlMs === 0 || mark !== generation) return;
      remove(key);
      if (entries.size >= MAX_ENTRIES) {
        const oldest = entries.keys().next();
        if (!oldest.done) remove(oldest.value);
      }
      const names = tags.map(tagOf);
      entries.set(key, { value, expires: Math.min(Date.now() + ttlMs, until), tags: names });
      for (const tag of names) {
        let keys = byTag.get(tag);
        if (!keys) {
          keys = new Set();
          byTag.set(tag, keys);
        }
        keys.add(key);
      }
    },
    async invalidate(change) {
      // publish delivers to this instance's subscriber (drop) at once, then to the others
      try {
        await signals.publish(PRINCIPALS_CHANNEL, change);
      } catch (err) {
        drop(change);
        logger.warn(
          { err: (err as Error).message, change },
          `cluster signal not sent: other instances may serve the old principal for up to ${ttlSeconds} s`,
        );
      }
    },
    close() {
      offSignal();
      offResync();
      dropAll();
    },
  };
}
