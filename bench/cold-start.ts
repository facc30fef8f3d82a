import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createScratchDatabase } from '../packages/server/test/scratch-database.js';
import { PG_ADMIN_URL, record, stamp, table } from './lib.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(here, '..', 'packages', 'server', 'bin', 'plexica.js');
const ROUNDS = 3;
// engines a start may load only when configured; what the embedded start loaded is listed
const ENGINE_PACKAGES = /node_modules\/((?:@aws-sdk\/[^/]+)|bullmq|ioredis|pg-boss)\//;

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject()));
    });
  });
const rssMiB = (pid: number) => {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return line ? Number(line[1]) / 1024 : Number.NaN;
};
const stop = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });

/** Spawns `args` and polls `url` until it answers 200: ms from spawn, RSS then, and the child. */
async function timeToOk(args: string[], env: NodeJS.ProcessEnv, url: string) {
  const started = performance.now();
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  for (;;) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${stderr.slice(-2000)}`);
    const ok = await fetch(url).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) break;
    if (performance.now() - started > 60_000) throw new Error(`no 200 from ${url} in 60 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const ms = performance.now() - started;
  return { ms, rss: rssMiB(child.pid!), child };
}

/** Plexica started as `plexica start`, its first /health 200; the engines it imported listed. */
async function plexica(dataDir: string, extra: NodeJS.ProcessEnv, probe: string) {
  const port = await freePort();
  const result = await timeToOk(
    ['--import', path.join(here, 'import-probe.mjs'), BIN, 'start'],
    {
      PLEXICA_DATA_DIR: dataDir,
      PLEXICA_PORT: String(port),
      PLEXICA_HOST: '127.0.0.1',
      PLEXICA_ADMIN_PASSWORD: 'cold-start-admin-1',
      PLEXICA_LOG_LEVEL: 'warn',
      IMPORT_PROBE_OUT: probe,
      ...extra,
    },
    `http://127.0.0.1:${port}/health`,
  );
  await stop(result.child);
  return result;
}

export async function coldStart(): Promise<void> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'plexica-cold-'));
  const probe = path.join(root, 'imports.txt');
  const bareScript = path.join(root, 'bare.mjs');
  const pgliteScript = path.join(root, 'pglite.mjs');
  // the references import the packages Plexica runs on, by their resolved URLs
  await writeFile(
    bareScript,
    `import Fastify from '${import.meta.resolve('fastify')}';\nconst s = Fastify();\ns.get('/health', async () => ({ status: 'ok' }));\nawait s.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });\n`,
  );
  await writeFile(
    pgliteScript,
    `import http from 'node:http';\nimport { PGlite } from '${import.meta.resolve('@electric-sql/pglite')}';\nconst db = await PGlite.create(process.env.PGDATA);\nawait db.query('select 1');\nhttp.createServer((q, r) => r.end('ok')).listen(Number(process.env.PORT), '127.0.0.1');\n`,
  );
  const runs: Record<string, { ms: number; rss: number }[]> = {};
  const add = (name: string, r: { ms: number; rss: number }) => {
    runs[name] ??= [];
    runs[name].push(r);
  };
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const dataDir = path.join(root, `embedded-${round}`);
      await writeFile(probe, '');
      add('Plexica embedded, first start (empty data dir)', await plexica(dataDir, {}, probe));
      add('Plexica embedded, restart', await plexica(dataDir, {}, probe));
      const port = await freePort();
      const bare = await timeToOk(
        [pgliteScript],
        { PGDATA: path.join(dataDir, 'pgdata'), PORT: String(port) },
        `http://127.0.0.1:${port}/`,
      );
      await stop(bare.child);
      add('bare: new PGlite(dir) on that data dir + node:http', bare);
      const fport = await freePort();
      const fastify = await timeToOk(
        [bareScript],
        { PORT: String(fport) },
        `http://127.0.0.1:${fport}/health`,
      );
      await stop(fastify.child);
      add('bare: Fastify start', fastify);
      const scratch = await createScratchDatabase(PG_ADMIN_URL, 'plx_cold');
      try {
        const env = {
          PLEXICA_DATABASE_URL: scratch.url,
          PLEXICA_MASTER_KEY: Buffer.alloc(32, 5).toString('base64'),
        };
        add(
          'Plexica on PostgreSQL, first start (migrations)',
          await plexica(path.join(root, `pg-${round}`), env, probe),
        );
        add('Plexica on PostgreSQL, restart', await plexica(path.join(root, `pg-${round}`), env, probe));
      } finally {
        await scratch.drop();
      }
    }
    const loaded = [
      ...new Set(
        readFileSync(probe, 'utf8')
          .split('\n')
          .map((l) => ENGINE_PACKAGES.exec(l)?.[1])
          .filter(Boolean),
      ),
    ];
    const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
    const med = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)]!;
    const fmt = (xs: number[], d = 0) =>
      `${med(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)})`;
    const rows = Object.entries(runs).map(([name, rs]) => [
      name,
      fmt(rs.map((r) => r.ms)),
      fmt(rs.map((r) => r.rss)),
    ]);
    const ms = (name: string) => med(runs[name]!.map((r) => r.ms));
    const firstRss = med(runs['Plexica embedded, first start (empty data dir)']!.map((r) => r.rss));
    const verdicts = [
      `embedded first start ${ms('Plexica embedded, first start (empty data dir)').toFixed(0)} ms → < 2 s ${ms('Plexica embedded, first start (empty data dir)') < 2000 ? 'met' : 'NOT met'}`,
      `embedded restart ${(ms('Plexica embedded, restart') / ms('bare: new PGlite(dir) on that data dir + node:http')).toFixed(2)}× a bare PGlite open → ≤ 1.5× ${ms('Plexica embedded, restart') <= 1.5 * ms('bare: new PGlite(dir) on that data dir + node:http') ? 'met' : 'NOT met'}`,
      `RSS after an embedded first start ${firstRss.toFixed(0)} MiB → < 450 MiB ${firstRss < 450 ? 'met' : 'NOT met'}`,
      `engine packages imported by the starts (embedded and PostgreSQL, jobs on pg-boss): ${loaded.length > 0 ? loaded.join(', ') : 'none'} (pg-boss is the configured jobs engine; the AWS SDK, BullMQ and ioredis must not appear)`,
    ];
    const text = table(['start, to the first /health 200', 'ms, median (min–max)', 'RSS MiB then'], rows);
    console.log(`\nCold start\n${text}\n${verdicts.join('\n')}`);
    await record(
      'cold-start',
      `## Cold start (\`bench/cold-start.ts\`, issue 12)\n\n${stamp()} · 2026-12-01, 2 cores shared, node-svc\n\nEach start is a new process (\`plexica start\` from the built \`dist/\`), timed from spawn to the first 200 of \`/health\` (polled every 10 ms), RSS read from /proc then; ${ROUNDS} rounds, each with a new data dir and a new PostgreSQL database, the references in the same round: \`new PGlite(dir)\` on the data dir Plexica just made plus a \`node:http\` server, and a bare Fastify server with one route.\n\n${text}\n\n${verdicts.map((v) => `- ${v}`).join('\n')}`,
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
