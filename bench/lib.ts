import { fork } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { type App, createApp } from '../packages/server/src/app/create-app.js';
import { loadConfig, type PlexicaConfig } from '../packages/server/src/config/index.js';
import { createScratchDatabase } from '../packages/server/test/scratch-database.js';

export type Engine = 'pglite' | 'postgres';
export const ENGINES: Engine[] = ['pglite', 'postgres'];
export const PG_ADMIN_URL = process.env.PLEXICA_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const ADMIN = { email: 'bench@plexica.test', password: 'bench-admin-password' };
const here = path.dirname(fileURLToPath(import.meta.url));

export const machine = () =>
  `${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

let template: string | undefined;

/** Settings for benchmarks whose stream clients share one token (the bound per principal is 20). */
export const ONE_PRINCIPAL_MANY_STREAMS = {
  realtimeMaxStreamsPerPrincipal: 100_000,
  realtimeMaxStreamsPerTenant: 1_000_000,
};

/** An app with its own database, like the tests' harness; rate limits are out of the way. */
export async function startApp(engine: Engine, overrides: Partial<PlexicaConfig> = {}) {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'plexica-bench-'));
  let databaseUrl: string | undefined;
  let drop = async () => {};
  if (engine === 'pglite') {
    if (!template) {
      template = await mkdtemp(path.join(os.tmpdir(), 'plexica-bench-template-'));
      await (await PGlite.create(path.join(template, 'pgdata'))).close();
    }
    await cp(path.join(template, 'pgdata'), path.join(dataDir, 'pgdata'), { recursive: true });
  } else {
    const scratch = await createScratchDatabase(PG_ADMIN_URL, 'plx_bench');
    databaseUrl = scratch.url;
    drop = scratch.drop;
  }
  const app: App = await createApp(
    loadConfig(
      {},
      {
        dataDir,
        databaseUrl,
        masterKey: [Buffer.alloc(32, 9).toString('base64')],
        adminEmail: ADMIN.email,
        adminPassword: ADMIN.password,
        logLevel: 'silent',
        rateLimitUser: 10_000_000,
        rateLimitTenant: 100_000_000,
        rateLimitAnonymous: 10_000_000,
        port: 0,
        host: '127.0.0.1',
        ...overrides,
      },
    ),
  );
  await app.bootstrapAdmin();
  return {
    app,
    async close() {
      await app.close();
      await drop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export async function removeTemplate() {
  if (template) await rm(template, { recursive: true, force: true });
  template = undefined;
}

export interface LoadResult {
  requests: number;
  errors: number;
  non2xx: number;
  rps: number;
  p50: number;
  /** autocannon reports no P95; P97.5 bounds it from above. */
  p97_5: number;
  p99: number;
  max: number;
}

export interface LoadSpec {
  url: string;
  connections: number;
  durationSeconds: number;
  headers?: Record<string, string>;
  /** Requests cycled by each connection; `{n}` in a body is replaced by a unique counter. */
  requests: { method: 'GET' | 'POST'; path: string; body?: string }[];
}

/**
 * Runs autocannon in a child process so the load generator does not share the
 * server's event loop (it still shares the machine's two cores).
 */
export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(here, 'load-worker.mjs'));
    child.once('message', (result) => resolve(result as LoadResult));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`load generator exited with ${code}`));
    });
    child.send(spec);
  });
}

/** Replaces the section for `name` in bench/RESULTS.md (kept in run order). */
export async function record(name: string, markdown: string) {
  const file = path.join(here, 'RESULTS.md');
  let text = '';
  try {
    text = await readFile(file, 'utf8');
  } catch {
    text =
      '# Benchmark results\n\nWritten by `npm run bench`; each section is replaced when its benchmark runs again.\n';
  }
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const section = `${start}\n${markdown.trim()}\n${end}`;
  const pattern = new RegExp(`${start}[\\s\\S]*?${end}`);
  text = pattern.test(text) ? text.replace(pattern, section) : `${text.trimEnd()}\n\n${section}\n`;
  await writeFile(file, text);
}

export const table = (headers: string[], rows: (string | number)[][]) =>
  [
    `| ${headers.join(' | ')} |`,
    `|${headers.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');

export const stamp = () => `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC · ${machine()}`;
