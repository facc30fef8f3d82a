import { describe, expect, it } from 'vitest';
import { createEndpointSlots } from './endpoint-slots.js';

describe('per-endpoint attempt slots', () => {
  it('gives an endpoint its limit, then a wait of about its answer time, and forgets it when idle', () => {
    const slots = createEndpointSlots({ limit: 2, timeoutMs: 15_000 });
    const a = slots.take('slow');
    const b = slots.take('slow');
    expect('release' in a && 'release' in b).toBe(true);
    // another endpoint is not held back by this one
    expect('release' in slots.take('fast')).toBe(true);
    const full = slots.take('slow');
    expect('retryInMs' in full && full.retryInMs).toBeGreaterThanOrEqual(1000);
    if (!('release' in a) || !('release' in b)) return;
    a.release(10_000);
    const afterOne = slots.take('slow');
    expect('release' in afterOne).toBe(true);
    // full again: the wait follows what the endpoint takes to answer, capped by the timeout
    const waited = slots.take('slow');
    expect('retryInMs' in waited && waited.retryInMs).toBeGreaterThanOrEqual(10_000);
    expect('retryInMs' in waited && waited.retryInMs).toBeLessThanOrEqual(18_000);
    b.release(undefined);
    if ('release' in afterOne) afterOne.release(12_000);
    // idle, then asked again: a slot at once
    expect('release' in slots.take('slow')).toBe(true);
  });
});
