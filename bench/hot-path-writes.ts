import { startBareServer } from './bare-server.js';
import { interleaved, type Measured, spread, startTenantApp } from './hot-path-lib.js';
import { ENGINES, record, stamp, table } from './lib.js';

const ROUNDS = 3;
const SECONDS = 2;

/**
 * Issue 12, the other hot routes next to the bare reference in the same run:
 * issuing a signed URL (authenticated, file lookup + audit record), downloading
 * through one (signature + tenant + file lookup, a small file), and
 * `POST /api/v1/jobs` at 1 and 10 connections.
 */
export async function hotPathWrites(): Promise<void> {
  const bare = await startBareServer();
  const rows: (string | number)[][] = [];
  const verdicts: string[] = [];
  try {
    for (const engine of ENGINES) {
      const ours = await startTenantApp(engine);
      try {
        const auth = { authorization: `Bearer ${ours.token}` };
        const uploaded = await fetch(`${ours.url}/api/v1/storage/upload?path=small.txt`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'text/plain' },
          body: 'seed@hot.test\n',
        });
        if (uploaded.status !== 201) throw new Error(`upload: ${uploaded.status} ${await uploaded.text()}`);
        const signed = (
          await ours.call('GET', '/api/v1/storage/signed-url/small.txt?expiresIn=3600', ours.token)
        ).url as string;
        const signedPath = signed.startsWith('http')
          ? new URL(signed).pathname + new URL(signed).search
          : signed;

        const signedRuns = await interleaved(ROUNDS, [
          {
            name: 'bare',
            spec: {
              url: bare.url,
              connections: 50,
              durationSeconds: SECONDS,
              requests: [{ method: 'GET', path: bare.signedPath }],
            },
          },
          {
            name: 'issue',
            spec: {
              url: ours.url,
              connections: 50,
              durationSeconds: SECONDS,
              headers: auth,
              requests: [{ method: 'GET', path: '/api/v1/storage/signed-url/small.txt?expiresIn=600' }],
            },
          },
          {
            name: 'download',
            spec: {
              url: ours.url,
              connections: 50,
              durationSeconds: SECONDS,
              requests: [{ method: 'GET', path: signedPath }],
            },
          },
        ]);
        const signedRef = signedRuns.get('bare')!;
        for (const [name, label] of [
          ['issue', 'GET /storage/signed-url (issue), 50 conn'],
          ['download', 'GET a signed URL (download, 14 B), 50 conn'],
        ] as const) {
          const mine = signedRuns.get(name)!;
          const ratio = spread(mine, (r) => r.rps).median / spread(signedRef, (r) => r.rps).median;
          rows.push(line(engine, label, mine, signedRef, ratio));
          if (engine === 'postgres')
            verdicts.push(
              `postgres, ${label}: ${Math.round(spread(mine, (r) => r.rps).median)} req/s → > 5,000/s ${spread(mine, (r) => r.rps).median > 5000 ? 'met' : 'NOT met'} (${ratio.toFixed(2)}× the bare server)`,
            );
        }

        for (const connections of [1, 10]) {
          const jobs = await interleaved(ROUNDS, [
            {
              name: 'bare',
              spec: {
                url: bare.url,
                connections,
                durationSeconds: SECONDS,
                headers: { authorization: `Bearer ${bare.token}` },
                requests: [
                  {
                    method: 'POST',
                    path: '/jobs',
                    body: '{"type":"bench.noop","runAt":"2099-01-01T00:00:00Z"}',
                  },
                ],
              },
            },
            {
              name: 'ours',
              spec: {
                url: ours.url,
                connections,
                durationSeconds: SECONDS,
                headers: auth,
                requests: [
                  {
                    method: 'POST',
                    path: '/api/v1/jobs',
                    body: '{"type":"bench.noop","runAt":"2099-01-01T00:00:00Z"}',
                  },
                ],
              },
            },
          ]);
          const mine = jobs.get('ours')!;
          const ref = jobs.get('bare')!;
          const ratio = spread(mine, (r) => r.rps).median / spread(ref, (r) => r.rps).median;
          rows.push(line(engine, `POST /api/v1/jobs, ${connections} conn`, mine, ref, ratio));
          if (engine === 'pglite' && connections === 1) {
            const p = spread(mine, (r) => r.p97_5).median;
            verdicts.push(
              `pglite, POST /api/v1/jobs, 1 conn: P97.5 ${p} ms → P95 < 2 ms ${p < 2 ? 'met' : 'NOT met'}`,
            );
          }
        }
        const errors = [...signedRuns.values()].flat().reduce((n, r) => n + r.errors + r.non2xx, 0);
        if (errors > 0)
          verdicts.push(`${engine}: ${errors} errors or non-2xx answers in the signed URL runs`);
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
      'route',
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
  console.log(`\nHot path, writes and signed URLs\n${text}\n${verdicts.join('\n')}`);
  await record(
    'hot-path-writes',
    `## Hot path: signed URLs and job inserts against a bare server (\`bench/hot-path-writes.ts\`, issue 12)\n\n${stamp()} · 2026-12-01, 2 cores shared, node-svc\n\nThe same bare reference as above, with a route per case, each one round trip to PostgreSQL: an HMAC-checked URL answering a 15-byte body read by primary key (for both signed-URL rows), and \`POST /jobs\` verifying the JWT and inserting one row. Ours: issuing a signed URL is authenticated and writes an audit record; downloading checks the signature, finds the tenant and the file and streams it from the filesystem; \`POST /api/v1/jobs\` is one transaction (job row, pg-boss delivery, audit record). ${ROUNDS} rounds of ${SECONDS} s, interleaved; median (min–max); CPU per request of the server process.\n\n${text}\n\n${verdicts.map((v) => `- ${v}`).join('\n')}`,
  );
}

function line(engine: string, label: string, mine: Measured[], reference: Measured[], ratio: number) {
  const latency = (rs: Measured[]) =>
    `${spread(rs, (r) => r.p50).median} / ${spread(rs, (r) => r.p97_5).median}`;
  return [
    engine,
    label,
    spread(mine, (r) => r.rps).text,
    spread(reference, (r) => r.rps).text,
    ratio.toFixed(2),
    latency(mine),
    latency(reference),
    spread(mine, (r) => r.cpuPerRequest, 3).text,
    spread(reference, (r) => r.cpuPerRequest, 3).text,
  ];
}
