/**
 * Turns many small calls into few large ones: calls made in the same tick go
 * together, and a call made while a batch is in flight waits for it and goes
 * with the others in the next batch. There is no timer: an idle call waits one
 * `setImmediate`, and under load batches grow with the load, so N concurrent
 * jobs cost a handful of statements instead of N.
 *
 * Written here rather than taken from `dataloader`, which batches per event-loop
 * tick: we want "whatever arrived while the last statement ran", which is what
 * keeps a single database connection (embedded mode) busy with full batches.
 *
 * @example
 * const claim = createBatcher(async (ids: string[]) => rowsInOrderOf(ids), { maxBatch: 500 });
 * const row = await claim(jobId);
 */
export function createBatcher<In, Out>(
  run: (items: In[]) => Promise<Out[]>,
  options: {
    maxBatch: number;
    /** Batches in flight at once (default 1); more than one only helps with a connection pool. */
    parallel?: number;
  },
): (item: In) => Promise<Out> {
  interface Waiting {
    item: In;
    resolve: (out: Out) => void;
    reject: (err: unknown) => void;
  }
  const waiting: Waiting[] = [];
  let inFlight = 0;
  const parallel = options.parallel ?? 1;

  const flush = async () => {
    if (inFlight >= parallel || waiting.length === 0) return;
    const batch = waiting.splice(0, options.maxBatch);
    inFlight++;
    try {
      const outs = await run(batch.map((w) => w.item));
      if (outs.length !== batch.length)
        throw new Error(`batch of ${batch.length} answered with ${outs.length} results`);
      for (const [i, w] of batch.entries()) w.resolve(outs[i]!);
    } catch (err) {
      // one statement for all of them: its failure is each caller's failure
      for (const w of batch) w.reject(err);
    } finally {
      inFlight--;
      void flush();
    }
  };

  // calls made in the same tick (jobs fetched together, handlers ending together) go together
  let scheduled = false;
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      void flush();
    });
  };

  return (item) =>
    new Promise<Out>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      schedule();
    });
}
