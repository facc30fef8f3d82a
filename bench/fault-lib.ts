import { type ChildProcess, fork } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type PlexicaConfig } from '../packages/server/src/config/index.js';
import { ADMIN } from './lib.js';

/** What the fault scenarios share: a tally per scenario, a load of user writes, a child server. */
export const here = path.dirname(fileURLToPath(import.meta.url));
export const HUNG_MS = 10_000;

export interface Tally {
  scenario: string;
  runs: number;
  acked: number;
  lost: number;
  jobsLost: number;
  duplicates: number;
  hung: number;
  s500: number;
  s503: number;
  refused: number;
  recoverMs: number[];
  note: string;
}
export const tally = (scenario: string): Tally => ({
  scenario,
  runs: 0,
  acked: 0,
  lost: 0,
  jobsLost: 0,
  duplicates: 0,
  hung: 0,
  s500: 0,
  s503: 0,
  refused: 0,
  recoverMs: [],
  note: '',
});

// biome-ignore lint/suspicious/noExplicitAny: the suite reads response bodies field by field
export type Call = (method: string, url: string, body?: unknown) => Promise<{ status: number; body: any }>;
export const client =
  (base: () => string, token: () => string, tenant?: string): Call =>
  async (method, url, body) => {
    const res = await fetch(`${base()}${url}`, {
      method,
      headers: {
        authorization: `Bearer ${token()}`,
        ...(tenant && { 'x-tenant-id': tenant }),
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(HUNG_MS),
    });
    const text = await res.text();
    return { status: res.status, body: text.startsWith('{') ? JSON.parse(text) : text };
  };

/** Logs in as the super admin at `base` and creates tenant `slug`. @returns calls made in that tenant, and its admin token */
export async function inNewTenant(
  base: string,
  slug: string,
): Promise<{ call: Call; token: string; tenant: string }> {
  const anonymous = client(
    () => base,
    () => '',
  );
  const token = (await anonymous('POST', '/api/v1/auth/login', ADMIN)).body.accessToken as string;
  const admin = client(
    () => base,
    () => token,
  );
  const tenant = (await admin('POST', '/api/v1/tenants', { slug, name: slug })).body.id as string;
  const call = client(
    () => base,
    () => token,
    tenant,
  );
  return { call, token, tenant };
}

/** `connections` loops creating users until `stop`; acknowledged emails land in `acked`. */
export function userLoad(call: Call, t: Tally, acked: Set<string>, connections: number, prefix: string) {
  let stop = false;
  let n = 0;
  const loops = Array.from({ length: connections }, async () => {
    while (!stop) {
      const email = `${prefix}-${n++}@faults.test`;
      try {
        const res = await call('POST', '/api/v1/users', { email });
        if (res.status === 201) acked.add(email);
        else if (res.status >= 500 && res.status !== 503 && res.status !== 507) t.s500++;
        else if (res.status === 503) t.s503++;
      } catch (err) {
        if ((err as Error).name === 'TimeoutError') t.hung++;
        else {
          t.refused++;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
  });
  return async () => {
    stop = true;
    await Promise.all(loops);
  };
}

export async function countMissing(call: Call, acked: Set<string>): Promise<number> {
  const seen = new Set<string>();
  for (let offset = 0; ; offset += 100) {
    const page = await call('GET', `/api/v1/users?limit=100&offset=${offset}`);
    for (const user of page.body.items as { email: string }[]) seen.add(user.email);
    if (page.body.items.length < 100) break;
  }
  return [...acked].filter((e) => !seen.has(e)).length;
}

export async function firstGood(call: () => Promise<boolean>, started = performance.now()): Promise<number> {
  for (;;) {
    if (await call().catch(() => false)) return performance.now() - started;
    await new Promise((r) => setTimeout(r, 25));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function baseConfig(dataDir: string, overrides: Partial<PlexicaConfig> = {}): PlexicaConfig {
  return loadConfig(
    {},
    {
      dataDir,
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
  );
}

export async function serverProcess(config: PlexicaConfig, marker: string, jobMs = 50) {
  const child = fork(path.join(here, 'fault-server.ts'), { execArgv: ['--import', 'tsx'], stdio: 'ignore' });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const address = await new Promise<string>((resolve, reject) => {
    child.once('message', (m: { address: string }) => resolve(m.address));
    void exited.then((code) => reject(new Error(`server exited with ${code}`)));
    child.send({ config, marker, jobMs });
  });
  return { child, address, exited };
}
export const killed = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
