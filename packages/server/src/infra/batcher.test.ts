import { describe, expect, it } from 'vitest';
import { createBatcher } from './batcher.js';

describe('createBatcher', () => {
  it('runs calls of the same tick as one batch, in order, each caller getting its own result', async () => {
    const batches: number[][] = [];
    const double = createBatcher(
      async (items: number[]) => {
        batches.push(items);
        return items.map((n) => n * 2);
      },
      { maxBatch: 100 },
    );
    expect(await Promise.all([double(1), double(2), double(3)])).toEqual([2, 4, 6]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('collects what arrives while a batch is in flight into the next one', async () => {
    const batches: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const echo = createBatcher(
      async (items: number[]) => {
        batches.push(items);
        if (batches.length === 1) await gate;
        return items;
      },
      { maxBatch: 100 },
    );
    const first = echo(1);
    await new Promise((resolve) => setImmediate(resolve));
    const later = [echo(2), echo(3), echo(4)];
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches).toEqual([[1]]);
    release();
    expect(await Promise.all([first, ...later])).toEqual([1, 2, 3, 4]);
    expect(batches).toEqual([[1], [2, 3, 4]]);
  });

  it('splits at maxBatch and keeps one batch in flight unless told otherwise', async () => {
    const sizes: number[] = [];
    let inFlight = 0;
    let most = 0;
    const echo = createBatcher(
      async (items: number[]) => {
        inFlight++;
        most = Math.max(most, inFlight);
        sizes.push(items.length);
        await new Promise((resolve) => setTimeout(resolve, 5));
        inFlight--;
        return items;
      },
      { maxBatch: 4 },
    );
    await Promise.all(Array.from({ length: 10 }, (_, i) => echo(i)));
    expect(sizes).toEqual([4, 4, 2]);
    expect(most).toBe(1);
  });

  it('fails every caller of a batch whose call fails, and goes on with the next batch', async () => {
    let calls = 0;
    const flaky = createBatcher(
      async (items: string[]) => {
        calls++;
        if (calls === 1) throw new Error('statement failed');
        return items;
      },
      { maxBatch: 10 },
    );
    const results = await Promise.allSettled([flaky('a'), flaky('b')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect((results[0] as PromiseRejectedResult).reason.message).toBe('statement failed');
    expect(await flaky('c')).toBe('c');
  });

  it('refuses an answer with the wrong number of results', async () => {
    const broken = createBatcher(async (_items: number[]) => [1], { maxBatch: 10 });
    await expect(Promise.all([broken(1), broken(2)])).rejects.toThrow('batch of 2 answered with 1 results');
  });
});
