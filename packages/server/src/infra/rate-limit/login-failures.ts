import { createHash } from 'node:crypto';
import type { RateLimitStore } from './store.js';

export interface LoginAttempt {
  /** The account has used its failures in this window: refuse without checking the password. */
  locked: boolean;
  /** This is the first refused attempt of the window (worth one audit record, not one per try). */
  justLocked: boolean;
  resetInMs: number;
}

/**
 * A failed-login counter per account, whatever address the attempts come
 * from (issue 9 item 5: the per-IP limit alone let a botnet, or a spoofed
 * X-Forwarded-For, try passwords forever). Counted before the password is
 * checked, so concurrent guesses cannot all slip in under the limit; a success
 * clears it. The window is fixed from its first attempt: further attempts do
 * not extend it, so an attacker can hold an account locked for one window at a
 * time, never longer than the window after they stop.
 */
export interface LoginFailures {
  attempt(account: string): Promise<LoginAttempt>;
  succeeded(account: string): Promise<void>;
}

/**
 * The store key of an account: `realm` is the key prefix of its realm
 * (`tenant:{slug}:`, `platform:`), `identity` the normalized email (with the
 * tenant name for an unknown tenant), hashed so addresses do not sit in Redis
 * in the clear.
 */
export const loginAccountKey = (realm: string, identity: string): string =>
  `${realm}rl:login:${createHash('sha256').update(identity).digest('base64url')}`;

export function createLoginFailures(
  store: RateLimitStore,
  limits: { maxFailures: number; windowMs: number },
): LoginFailures {
  return {
    async attempt(account) {
      const { count, resetInMs } = await store.hit(account, limits.windowMs);
      return {
        locked: count > limits.maxFailures,
        justLocked: count === limits.maxFailures + 1,
        resetInMs,
      };
    },
    async succeeded(account) {
      await store.reset(account);
    },
  };
}
