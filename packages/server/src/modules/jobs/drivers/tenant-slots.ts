import type { Redis } from 'ioredis';

/**
 * A tenant's running jobs of one queue as leases: a sorted set of delivery id
 * → lease expiry (Redis time, so workers' clocks do not matter). Expired
 * leases are pruned before counting, so the slots of a worker that died
 * holding them come back once their lease runs out; a counter never would (a
 * dead worker's increments stay, and every step-aside refreshed its TTL).
 */
export interface TenantSlots {
  /** Takes a slot for `member` unless `limit` live leases are held by others. @returns whether it got one */
  take(key: string, member: string, limit: number, leaseMs: number): Promise<boolean>;
  /** Extends `member`'s lease; a lease already pruned is not brought back. */
  renew(key: string, member: string, leaseMs: number): Promise<void>;
  release(key: string, member: string): Promise<void>;
}

// the set itself expires two leases after its last write: an idle tenant leaves nothing behind
const NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;
const TAKE = `${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[3]))
  return 1
end
return 0`;
const RENEW = `${NOW}
if redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[2]))
end
return 1`;

type SlotCommands = Redis & {
  plexicaTakeSlot(key: string, member: string, limit: number, leaseMs: number): Promise<number>;
  plexicaRenewSlot(key: string, member: string, leaseMs: number): Promise<number>;
};

export function createTenantSlots(redis: Redis): TenantSlots {
  redis.defineCommand('plexicaTakeSlot', { numberOfKeys: 1, lua: TAKE });
  redis.defineCommand('plexicaRenewSlot', { numberOfKeys: 1, lua: RENEW });
  const commands = redis as SlotCommands;
  return {
    take: async (key, member, limit, leaseMs) =>
      (await commands.plexicaTakeSlot(key, member, limit, leaseMs)) === 1,
    async renew(key, member, leaseMs) {
      await commands.plexicaRenewSlot(key, member, leaseMs);
    },
    async release(key, member) {
      await redis.zrem(key, member);
    },
  };
}
