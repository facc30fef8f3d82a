import { startBareServer } from './bare-server.js';
import { interleaved, type Measured, spread, startTenantApp } from './hot-path-lib.js';
import { ENGINES, record, stamp, table } from './lib.js';

const ROUNDS = 5;
const SECONDS = 2;

/**
 * Issue 12: an authenticated `GET /api/v1/users/{id}` (access JWT and API key)
 * against the bare reference (EdDSA verify with a verified-token cache + one
 * primary-key read through `pg` on PostgreSQL), interleaved in one run, at 10
 * and 50 connections, on PostgreSQL and on PGlite.
 */
export async function hotPath(): Promise<void> {
  const bare = await startBareServer();
  const rows: (string | number)[][] = [];
  const verdicts: string[] = [];
  try {
    for (const engine of ENGINES) {
      const ours = await startTenantApp(engine);
      try {
        for (const connections of [10, 50]) {
          const results = await interleaved(ROUNDS, [
            {
              name: 'bare',
              spec: {
                url: bare.url,
                connections,
                durationSeconds: SECONDS,
                headers: { authorization: `Bearer ${bare.token}` },
                requests: [{ method: 'GET', path: bare.itemPath }],
              },
            },
            {
              name: 'JWT',
              spec: {
                url: ours.url,
                connections,
                durationSeconds: SECONDS,
                headers: { authorization: `Bearer ${ours.token}` },
                requests: [{ method: 'GET', path: `/api/v1/users/${ours.userId}` }],
              },
            },
            {
              name: 'API key',
              spec: {
                url: ours.url,
                connections,
                durationSeconds: SECONDS,
                headers: { authorization: `Bearer ${ours.apiKey}` },
                requests: [{ method: 'GET', path: `/api/v1/users/${ours.userId}` }],
              },
            },
          ]);
          const reference = results.get('bare')!;
          const refRps = spread(reference, (r) => r.rps);
          for (const name of ['JWT', 'API key']) {
            const mine = results.get(name)!;
            const rps = spread(mine, (r) => r.rps);
            const ratio = rps.median / refRps.median;
            rows.push(line(engine, name, connections, mine, reference, ratio));
            const target = engine === 'postgres' ? 0.7 : 0.3;
            verdicts.push(
              `${engine}, ${name}, ${connections} conn: ${ratio.toFixed(2)}× the bare server → ≥ ${target}× ${ratio >= target ? 'met' : 'NOT met'}`,
            );
            if (engine === 'postgres' && connections === 50) {
              const p = spread(mine, (r) => r.p97_5);
              verdicts.push(
                `postgres, ${name}, 50 conn: P97.5 ${p.median} ms → P95 < 10 ms ${p.median < 10 ? 'met' : 'NOT met'}`,
              );
            }
          }
          const errors = [...results.values()].flat().reduce((n, r) => n + r.errors + r.non2xx, 0);
          if (errors > 0)
            verdicts.push(`${engine}, ${connections} conn: ${errors} errors or non-2xx answers`);
        }
      } finally {
        await ours.close();
      }
    }
  } finally {
    await bare.close();
  }
  const text = table(
    [
      'database',
      'credential',
      'conn',
      'ours req/s',
      'bare req/s',
      'ratio',
      'ours P50 / P97.5 ms',
      'bare P50 / P97.5 ms',
      'ours CPU ms/req',
      'bare CPU ms/req',
    ],
    rows,
  );
  console.log(`\nHot path\n${text}\n${verdicts.join('\n')}`);
  await record(
    'hot-path',
    `## Hot path: authenticated reads against a bare server (\`bench/hot-path.ts\`, issue 12)\n\n${stamp()} · 2026-12-01, 2 cores shared, node-svc\n\n\`GET /api/v1/users/{id}\` as a tenant admin (access JWT) and with an API key, against the bare reference: Fastify 5 verifying an EdDSA JWT (verified tokens remembered) and reading one row by primary key through \`pg\` on PostgreSQL (pool of 10; ours has 10 too). ${ROUNDS} rounds of ${SECONDS} s, interleaved (bare, JWT, API key, then again); median (min–max). autocannon runs in a child process on the same 2 shared cores. CPU per request is the server process's (user + system from /proc, PGlite's worker thread included; PostgreSQL's backends are not in it). The PGlite rows are compared with the same PostgreSQL-backed bare server.\n\n${text}\n\n${verdicts.map((v) => `- ${v}`).join('\n')}`,
  );
}

function line(
  engine: string,
  name: string,
  connections: number,
  mine: Measured[],
  reference: Measured[],
  ratio: number,
) {
  const latency = (rs: Measured[]) =>
    `${spread(rs, (r) => r.p50).median} / ${spread(rs, (r) => r.p97_5).median}`;
  return [
    engine,
    name,
    connections,
    spread(mine, (r) => r.rps).text,
    spread(reference, (r) => r.rps).text,
    ratio.toFixed(2),
    latency(mine),
    latency(reference),
    spread(mine, (r) => r.cpuPerRequest, 3).text,
    spread(reference, (r) => r.cpuPerRequest, 3).text,
  ];
}
