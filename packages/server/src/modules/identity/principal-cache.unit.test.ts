import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Authenticated } from '../../context.js';
import { openSignalChannel } from '../../infra/signals/index.js';
import { createPrincipalCache, PRINCIPALS_CHANNEL } from './principal-cache.js';

const logger = pino({ level: 'silent' });
const principal = (id: string): Authenticated => ({
  principal: {
    type: 'user',
    id,
    userId: id,
    isSuperAdmin: false,
    roles: [],
    permissions: new Set(),
    sessionId: `s-${id}`,
  },
  tenant: null,
});
const open = async (ttlSeconds = 60) => {
  const signals = await openSignalChannel(
    { signalsDriver: 'memory', signalsPrefix: 'unit', databaseUrl: undefined, redisUrl: undefined },
    logger,
  );
  return { signals, cache: createPrincipalCache({ ttlSeconds, signals, logger }) };
};

describe('principal cache', () => {
  it('drops the entries a change names, and only those', async () => {
    const { cache } = await open();
    cache.set(
      'a',
      principal('a'),
      [
        { kind: 'user', id: 'a' },
        { kind: 'tenant', id: 't1' },
      ],
      cache.mark(),
    );
    cache.set(
      'b',
      principal('b'),
      [
        { kind: 'user', id: 'b' },
        { kind: 'tenant', id: 't2' },
      ],
      cache.mark(),
    );
    await cache.invalidate({ kind: 'tenant', id: 't1' });
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')?.principal.id).toBe('b');
  });

  it('keeps nothing a lookup read before a change that came in meanwhile', async () => {
    const { cache } = await open();
    const mark = cache.mark();
    await cache.invalidate({ kind: 'session', id: 'unrelated' });
    cache.set('a', principal('a'), [{ kind: 'user', id: 'a' }], mark);
    expect(cache.get('a')).toBeUndefined();
  });

  it('ends an entry at the TTL or the credential’s own expiry, and keeps nothing with a TTL of 0', async () => {
    const { cache } = await open();
    cache.set('a', principal('a'), [], cache.mark(), Date.now() - 1);
    expect(cache.get('a')).toBeUndefined();
    const off = await open(0);
    off.cache.set('a', principal('a'), [], off.cache.mark());
    expect(off.cache.get('a')).toBeUndefined();
  });

  it('drops everything for a signal it cannot read', async () => {
    const { cache, signals } = await open();
    cache.set('a', principal('a'), [], cache.mark());
    await signals.publish(PRINCIPALS_CHANNEL, 'garbled');
    expect(cache.get('a')).toBeUndefined();
  });
});
