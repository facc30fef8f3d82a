import { readFileSync } from 'node:fs';
import { systemContext } from '../packages/server/src/context.js';
import { type Engine, type LoadResult, type LoadSpec, runLoad, startApp } from './lib.js';

/** CPU time (user + system, all threads: PGlite's worker included) of this process, in ms. */
function cpuMs(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 Hz)
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export interface Measured extends LoadResult {
  /** Server-process CPU per request (this process; PostgreSQL's backends are not in it). */
  cpuPerRequest: number;
}

/** One load against a server running in this process, with the process's CPU per request. */
export async function measure(spec: LoadSpec): Promise<Measured> {
  const before = cpuMs();
  const result = await runLoad(spec);
  const used = cpuMs() - before;
  return { ...result, cpuPerRequest: result.requests > 0 ? used / result.requests : Number.NaN };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Median (min–max) of a figure over rounds. */
export function spread(results: Measured[], pick: (r: Measured) => number, digits = 0) {
  const xs = results.map(pick);
  const f = (x: number) => x.toFixed(digits);
  return { median: median(xs), text: `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})` };
}

/**
 * Runs each variant once per round, rounds interleaved (A B C, A B C, …), so a
 * machine shared with others slows every variant alike rather than one.
 */
export async function interleaved(
  rounds: number,
  variants: { name: string; spec: LoadSpec }[],
): Promise<Map<string, Measured[]>> {
  const results = new Map<string, Measured[]>(variants.map((v) => [v.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const variant of variants) results.get(variant.name)!.push(await measure(variant.spec));
  }
  return results;
}

/** An app with a tenant, a tenant admin's access token, an API key of theirs and the admin's user id. */
export async function startTenantApp(engine: Engine) {
  const started = await startApp(engine, { databasePoolSize: 10 });
  const { app } = started;
  app.services.jobs.define({ type: 'bench.noop', handler: async () => null });
  const url = await app.start();
  if (!url) throw new Error('app did not listen');
  const root = await app.services.sessions.login(
    systemContext('bench'),
    { email: 'bench@plexica.test', password: 'bench-admin-password' },
    {},
  );
  const tenant = await app.services.tenants.create({ slug: `hot-${engine}`, name: 'Hot path' });
  const call = async (method: string, path: string, token: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<Record<string, unknown>>;
  };
  const user = await call('POST', `/api/v1/tenants/${tenant.id}/users`, root.accessToken, {
    email: 'seed@hot.test',
    password: 'hot-path-admin-1',
    roles: ['tenant_admin'],
  });
  const admin = await app.services.sessions.login(
    systemContext('bench'),
    { email: 'seed@hot.test', password: 'hot-path-admin-1', tenant: tenant.slug },
    {},
  );
  const key = await call('POST', '/api/v1/api-keys', admin.accessToken, {
    name: 'bench',
    permissions: ['core:user:read', 'jobs:job:create', 'storage:file:read'],
  });
  return {
    ...started,
    url,
    tenant,
    userId: user.id as string,
    token: admin.accessToken,
    apiKey: key.secret as string,
    call,
  };
}
