import { ENGINES, percentile, record, stamp, startApp, table } from './lib.js';

const TENANTS = 100;

/** Creates 100 tenants one after another (row + schema + tenant migrations, one transaction each). */
export async function provisioning(): Promise<void> {
  const rows: (string | number)[][] = [];
  const verdicts: string[] = [];
  for (const engine of ENGINES) {
    const { app, close } = await startApp(engine);
    try {
      const times: number[] = [];
      const started = performance.now();
      for (let i = 0; i < TENANTS; i += 1) {
        const t0 = performance.now();
        await app.services.tenants.create({ slug: `prov-${engine}-${i}`, name: `Tenant ${i}` });
        times.push(performance.now() - t0);
      }
      const total = (performance.now() - started) / 1000;
      const sorted = [...times].sort((a, b) => a - b);
      const mean = times.reduce((a, b) => a + b, 0) / times.length;
      rows.push([
        engine,
        TENANTS,
        mean.toFixed(1),
        percentile(sorted, 50).toFixed(1),
        percentile(sorted, 95).toFixed(1),
        sorted.at(-1)!.toFixed(1),
        total.toFixed(2),
      ]);
      verdicts.push(
        `${engine}: each < 1 s (seed < 30 s): P95 ${percentile(sorted, 95).toFixed(1)} ms → ${percentile(sorted, 95) < 1000 ? 'met' : 'NOT met'}; 100 in < 60 s: ${total.toFixed(2)} s → ${total < 60 ? 'met' : 'NOT met'}`,
      );
    } finally {
      await close();
    }
  }
  const text = table(['engine', 'tenants', 'mean ms', 'P50 ms', 'P95 ms', 'max ms', 'total s'], rows);
  console.log(`\nTenant provisioning\n${text}\n${verdicts.join('\n')}`);
  await record(
    'provisioning',
    `## Tenant provisioning (\`bench/provisioning.ts\`)\n\n${stamp()}\n\n${TENANTS} tenants created in sequence through the tenants service: insert, \`create schema\`, tenant migrations, all in one transaction each.\n\n${text}\n\n${verdicts.map((v) => `- ${v}`).join('\n')}`,
  );
}
