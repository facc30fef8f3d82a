import { systemContext } from '../packages/server/src/context.js';
import { ENGINES, type Engine, type LoadResult, record, runLoad, stamp, startApp, table } from './lib.js';

/**
 * /health latency at 10 connections and an authenticated CRUD mix (create a
 * user, read a user) at 50 connections, on the embedded database and on
 * PostgreSQL, through real HTTP on loopback.
 */
export async function httpLatency(): Promise<void> {
  const rows: (string | number)[][] = [];
  const verdicts: string[] = [];
  for (const engine of ENGINES) {
    const { app, close } = await startApp(engine, { databasePoolSize: 20 });
    try {
      const url = await app.start();
      if (!url) throw new Error('app did not listen');
      const admin = await app.services.sessions.login(
        systemContext('bench'),
        { email: 'bench@plexica.test', password: 'bench-admin-password' },
        {},
      );
      const tenant = await app.services.tenants.create({ slug: `bench-${engine}`, name: 'Bench' });
      // the load runs as a tenant admin, the common case (a super admin naming a tenant costs one more lookup)
      const seed = await fetch(`${url}/api/v1/tenants/${tenant.id}/users`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin.accessToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          email: 'seed@bench.test',
          password: 'bench-tenant-admin-1',
          roles: ['tenant_admin'],
        }),
      }).then((r) => r.json() as Promise<{ id: string }>);
      const tenantAdmin = await app.services.sessions.login(
        systemContext('bench'),
        { email: 'seed@bench.test', password: 'bench-tenant-admin-1', tenant: tenant.slug },
        {},
      );
      const headers = { authorization: `Bearer ${tenantAdmin.accessToken}` };

      const health = await runLoad({
        url,
        connections: 10,
        durationSeconds: 3,
        requests: [{ method: 'GET', path: '/health' }],
      });
      const crud = await runLoad({
        url,
        connections: 50,
        durationSeconds: 5,
        headers,
        requests: [
          {
            method: 'POST',
            path: '/api/v1/users',
            body: '{"email":"u-{n}@bench.test","displayName":"Bench {n}"}',
          },
          { method: 'GET', path: `/api/v1/users/${seed.id}` },
        ],
      });
      const read = await runLoad({
        url,
        connections: 50,
        durationSeconds: 5,
        headers,
        requests: [{ method: 'GET', path: `/api/v1/users/${seed.id}` }],
      });
      const row = (name: string, r: LoadResult) => [
        engine,
        name,
        r.requests,
        Math.round(r.rps),
        r.p50,
        r.p97_5,
        r.p99,
        r.max,
        r.errors + r.non2xx,
      ];
      rows.push(
        row('GET /health, 10 conn', health),
        row('create + get user, 50 conn', crud),
        row('get user (read only), 50 conn', read),
      );
      verdicts.push(
        verdict(engine, '/health P95 < 2 ms (seed < 100 ms)', health.p97_5, 2, 100),
        verdict(engine, 'CRUD P95 < 10 ms (seed < 200 ms)', crud.p97_5, 10, 200),
      );
    } finally {
      await close();
    }
  }
  const text = table(
    ['engine', 'load', 'requests', 'req/s', 'P50 ms', 'P97.5 ms', 'P99 ms', 'max ms', 'errors'],
    rows,
  );
  console.log(`\nHTTP latency\n${text}\n${verdicts.join('\n')}`);
  await record(
    'http-latency',
    `## HTTP latency (\`bench/http-latency.ts\`)\n\n${stamp()}\n\nautocannon in a child process on the same 2-core machine as the server (loopback). autocannon reports no P95, so targets are checked against P97.5, which bounds P95 from above.\n\n${text}\n\n${verdicts.map((v) => `- ${v}`).join('\n')}`,
  );
}

const verdict = (engine: Engine, target: string, value: number, ours: number, seed: number) =>
  `${engine}: ${target}: P97.5 = ${value} ms → ours ${value < ours ? 'met' : 'NOT met'}, seed ${value < seed ? 'met' : 'NOT met'}`;
