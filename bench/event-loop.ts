import { PGlite } from '@electric-sql/pglite';
import { sql } from 'kysely';
import { percentile, record, stamp, startApp, table } from './lib.js';

const HEAVY = [
  'select count(*) from generate_series(1, 3000000)',
  'select md5(g::text) as h from generate_series(1, 400000) g order by h limit 1',
];

/** Main-thread event-loop delay while heavy queries run, with PGlite in our worker thread vs in-process. */
export async function eventLoop(): Promise<void> {
  const rows: (string | number)[][] = [];

  const { app, close } = await startApp('pglite');
  try {
    const url = await app.start();
    const measured = await measure(async () => {
      const pings = (async () => {
        let n = 0;
        const until = Date.now() + 2000;
        while (Date.now() < until) {
          await fetch(`${url}/health`);
          n += 1;
        }
        return n;
      })();
      for (const query of HEAVY) await sql.raw(query).execute(app.database.db);
      await pings;
    });
    rows.push(['PGlite in a worker thread (Plexica)', ...measured]);
  } finally {
    await close();
  }

  const inProcess = await PGlite.create();
  try {
    const measured = await measure(async () => {
      for (const query of HEAVY) await inProcess.query(query);
    });
    rows.push(['PGlite in the main thread (reference)', ...measured]);
  } finally {
    await inProcess.close();
  }

  const ours = Number(rows[0]![2]);
  const verdict = `worker thread: max delay ${ours} ms → target max < 20 ms ${ours < 20 ? 'met' : 'NOT met'}`;
  const text = table(['setup', 'elapsed ms', 'max delay ms', 'P99 delay ms', 'mean delay ms'], rows);
  console.log(`\nEvent-loop delay while heavy queries run\n${text}\n${verdict}`);
  await record(
    'event-loop',
    `## Event-loop delay under heavy queries (\`bench/event-loop.ts\`)\n\n${stamp()}\n\nQueries: ${HEAVY.map((q) => `\`${q}\``).join(', ')}; for Plexica, /health is called in a loop meanwhile. Delay = lateness of a 5 ms interval timer on the main thread.\n\n${text}\n\n- ${verdict}`,
  );
}

/**
 * Samples the main thread with a 5 ms interval timer: each tick's lateness is
 * time the loop could not serve a request.
 */
async function measure(work: () => Promise<void>): Promise<(string | number)[]> {
  const INTERVAL = 5;
  const lateness: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    lateness.push(Math.max(0, now - last - INTERVAL));
    last = now;
  }, INTERVAL);
  const started = performance.now();
  await work();
  const elapsed = performance.now() - started;
  // a loop blocked through the whole run reports it on the next tick: let that tick happen
  await new Promise((resolve) => setTimeout(resolve, 3 * INTERVAL));
  clearInterval(timer);
  const sorted = [...lateness].sort((a, b) => a - b);
  const mean = lateness.reduce((a, b) => a + b, 0) / Math.max(1, lateness.length);
  return [
    elapsed.toFixed(0),
    (sorted.at(-1) ?? 0).toFixed(1),
    percentile(sorted, 99).toFixed(1),
    mean.toFixed(2),
  ];
}
