import { type ChildProcess, fork } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { WebSocketServer } from 'ws';
import { systemContext, toTenantRef } from '../packages/server/src/context.js';
import { ADMIN, ONE_PRINCIPAL_MANY_STREAMS, percentile, record, stamp, startApp, table } from './lib.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const N = Number(process.env.PLEXICA_BENCH_STREAMS ?? 5000);
const BROADCASTS = 10;
const now = () => performance.timeOrigin + performance.now();
const gc = (globalThis as { gc?: () => void }).gc;

interface Run {
  connectMs: number;
  failed: number;
  open: number;
  rssPerConnKB: number;
  heapPerConnKB: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

const memory = async () => {
  for (let i = 0; i < 3; i += 1) {
    gc?.();
    await new Promise((r) => setTimeout(r, 100));
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed + m.external + m.arrayBuffers };
};

function ask<T>(child: ChildProcess, msg: object, key: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (reply: Record<string, unknown>) => {
      if (reply[key] === undefined) return;
      child.off('message', on);
      resolve(reply as T);
    };
    child.on('message', on);
    child.send(msg);
  });
}

/** N clients connect (in a child process), then BROADCASTS events fan out to all of them. */
async function measure(
  url: string,
  headers: Record<string, string>,
  subscribe: object,
  broadcast: (k: number) => Promise<void>,
  n = N,
  broadcasts = BROADCASTS,
): Promise<Run> {
  const child = fork(path.join(here, 'realtime-clients.mjs'));
  try {
    const before = await memory();
    const ready = await ask<{ connectMs: number; failed: number; open: number }>(
      child,
      { cmd: 'connect', url, headers, n, batch: 250, subscribe },
      'ready',
    );
    const after = await memory();
    const all: number[] = [];
    for (let k = 0; k < broadcasts; k += 1) {
      const done = ask<{ latencies: number[] }>(child, { cmd: 'expect', count: ready.open }, 'done');
      await new Promise((r) => setTimeout(r, 50));
      await broadcast(k);
      const { latencies } = await done;
      all.push(...latencies);
      await new Promise((r) => setTimeout(r, 300));
    }
    all.sort((x, y) => x - y);
    await ask(child, { cmd: 'close' }, 'closed');
    const round = (x: number) => Math.round(x * 10) / 10;
    return {
      connectMs: Math.round(ready.connectMs),
      failed: ready.failed,
      open: ready.open,
      rssPerConnKB: round((after.rss - before.rss) / 1024 / ready.open),
      heapPerConnKB: round((after.heap - before.heap) / 1024 / ready.open),
      p50: round(percentile(all, 50)),
      p95: round(percentile(all, 95)),
      p99: round(percentile(all, 99)),
      max: round(all.at(-1) ?? 0),
    };
  } finally {
    child.kill();
  }
}

/** Reference: a bare `ws` server doing the same fan-out (one serialisation, one send per client). */
async function bare(): Promise<Run> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as { type: string; channel?: string };
      if (frame.type === 'subscribe') ws.send(JSON.stringify({ type: 'subscribed', channel: frame.channel }));
    });
  });
  const port = (wss.address() as AddressInfo).port;
  let seq = 0;
  try {
    return await measure(
      `ws://127.0.0.1:${port}/`,
      {},
      { type: 'subscribe', channel: 'tenant' },
      async (k) => {
        seq += 1;
        const text = JSON.stringify({
          type: 'event',
          id: String(seq),
          event: { type: 'crm.tick', data: { sentAt: now(), k } },
        });
        for (const ws of wss.clients) ws.send(text);
      },
    );
  } finally {
    for (const ws of wss.clients) ws.terminate();
    await new Promise((r) => wss.close(() => r(undefined)));
  }
}

type Started = Awaited<ReturnType<typeof startApp>>;

async function ours(): Promise<Run> {
  const started = await startApp('pglite', { eventsPollIntervalMs: 50, ...ONE_PRINCIPAL_MANY_STREAMS });
  try {
    const { base, token, publish } = await benchTenant(started);
    return await measure(
      `${base.replace(/^http/, 'ws')}/api/v1/events/stream`,
      { authorization: `Bearer ${token}` },
      { type: 'subscribe', channel: 'tenant', types: ['crm.*'] },
      (k) => publish(k),
    );
  } finally {
    await started.close();
  }
}

const RESUMERS = 1000;
const MISSED = 100;

/**
 * Resume cost: 1,000 clients reconnect after 100 events each missed, next to the same
 * 1,000 connecting fresh (subscribe only) in the same run.
 */
export async function realtimeResume(): Promise<void> {
  const started = await startApp('pglite', { eventsPollIntervalMs: 50, ...ONE_PRINCIPAL_MANY_STREAMS });
  const child = fork(path.join(here, 'realtime-clients.mjs'));
  try {
    const { base, token, publish } = await benchTenant(started);
    const db = started.app.database.db;
    const head = async () =>
      Number(
        (await sql<{ head: string | null }>`select max(seq)::text as head from core.realtime_log`.execute(db))
          .rows[0]?.head ?? 0,
      );
    const url = `${base.replace(/^http/, 'ws')}/api/v1/events/stream`;
    const headers = { authorization: `Bearer ${token}` };
    const subscriptions = [{ channel: 'tenant', types: ['crm.*'] }];
    type Ready = { connectMs: number; open: number; received: number };
    /** Connects RESUMERS clients that each send `first`, waits until all are ready, then closes them. */
    const connectAll = async (first: object, readyOn?: string) => {
      const ready = await ask<Ready>(
        child,
        {
          cmd: 'connect',
          url,
          headers,
          n: RESUMERS,
          batch: 100,
          subscribe: first,
          ...(readyOn && { readyOn }),
        },
        'ready',
      );
      await ask(child, { cmd: 'close' }, 'closed');
      return ready;
    };
    const fresh = await connectAll({ type: 'subscribe', ...subscriptions[0] });
    const from = await head();
    for (let k = 0; k < MISSED; k += 1) await publish(k);
    const deadline = Date.now() + 60_000;
    while ((await head()) < from + MISSED && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    const resumed = await connectAll(
      { type: 'resume', lastEventId: String(from), subscriptions },
      '"resumed"',
    );
    const rows = [
      ['1,000 fresh connects (subscribe)', fresh.open, Math.round(fresh.connectMs), 0, '—'],
      [
        `1,000 resumes after ${MISSED} missed each`,
        resumed.open,
        Math.round(resumed.connectMs),
        resumed.received,
        (resumed.received / resumed.open).toFixed(1),
      ],
    ];
    const text = table(['phase', 'clients', 'all done ms', 'events filled', 'per client'], rows);
    const ratio = `ratio resume / fresh connect: ${(resumed.connectMs / fresh.connectMs).toFixed(1)}×`;
    console.log(`\nRealtime resume cost\n${text}\n${ratio}`);
    await record('realtime-resume', `## Realtime: resume cost (${stamp()})\n\n${text}\n\n${ratio}\n`);
  } finally {
    child.kill();
    await started.close();
  }
}

/**
 * Per-user delivery: one client on `user:me` while N others are connected (on a channel the
 * event does not match), next to a bare ws server sending to one of N + 1 clients.
 */
export async function realtimeUser(): Promise<void> {
  const crowd = fork(path.join(here, 'realtime-clients.mjs'));
  const rows: (string | number)[][] = [];
  let oursP95 = 0;
  let bareP95 = 0;
  try {
    const started = await startApp('pglite', { eventsPollIntervalMs: 50, ...ONE_PRINCIPAL_MANY_STREAMS });
    try {
      const { base, token, publish, userId } = await benchTenant(started);
      const url = `${base.replace(/^http/, 'ws')}/api/v1/events/stream`;
      const headers = { authorization: `Bearer ${token}` };
      await ask(
        crowd,
        {
          cmd: 'connect',
          url,
          headers,
          n: N,
          batch: 250,
          subscribe: { type: 'subscribe', channel: 'tenant', types: ['other.*'] },
        },
        'ready',
      );
      const run = await measure(
        url,
        headers,
        { type: 'subscribe', channel: 'user:me' },
        (k) => publish(k, userId),
        1,
        50,
      );
      oursP95 = run.p95;
      rows.push([`Plexica, 1 on user:me + ${N} others`, run.p50, run.p95, run.p99, run.max]);
      await ask(crowd, { cmd: 'close' }, 'closed');
    } finally {
      await started.close();
    }
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    let target: import('ws').WebSocket | undefined;
    wss.on('connection', (ws) => {
      ws.on('message', (data) => {
        const frame = JSON.parse(data.toString()) as { type: string; channel?: string };
        if (frame.channel === 'user:me') target = ws;
        if (frame.type === 'subscribe')
          ws.send(JSON.stringify({ type: 'subscribed', channel: frame.channel }));
      });
    });
    const port = (wss.address() as AddressInfo).port;
    const url = `ws://127.0.0.1:${port}/`;
    await ask(
      crowd,
      {
        cmd: 'connect',
        url,
        headers: {},
        n: N,
        batch: 250,
        subscribe: { type: 'subscribe', channel: 'tenant' },
      },
      'ready',
    );
    const run = await measure(
      url,
      {},
      { type: 'subscribe', channel: 'user:me' },
      async (k) => {
        target?.send(
          JSON.stringify({
            type: 'event',
            id: String(k),
            event: { type: 'crm.tick', data: { sentAt: now(), k } },
          }),
        );
      },
      1,
      50,
    );
    bareP95 = run.p95;
    rows.push([`bare ws, 1 of ${N + 1}`, run.p50, run.p95, run.p99, run.max]);
    await ask(crowd, { cmd: 'close' }, 'closed');
    for (const ws of wss.clients) ws.terminate();
    await new Promise((r) => wss.close(() => r(undefined)));
  } finally {
    crowd.kill();
  }
  const text = table(['server', 'P50 ms', 'P95 ms', 'P99 ms', 'max ms'], rows);
  const ratio = `ratio ours/bare P95: ${(oursP95 / Math.max(bareP95, 0.1)).toFixed(1)}×`;
  console.log(`\nPer-user delivery while ${N} are connected (50 events)\n${text}\n${ratio}`);
  await record(
    `realtime-user-${N}`,
    `## Realtime: per-user delivery while ${N} others are connected (${stamp()})\n\n${text}\n\n${ratio}\n`,
  );
}

/** Starts the app and makes a tenant with an admin: its token and a publisher of tenant events. */
async function benchTenant({ app }: Started) {
  const base = (await app.start()) ?? '';
  const inject = async (method: 'POST', url: string, payload: object, token?: string) => {
    const res = await app.server.inject({
      method,
      url,
      payload,
      ...(token && { headers: { authorization: `Bearer ${token}` } }),
    });
    return res.json() as Record<string, string>;
  };
  const root = (await inject('POST', '/api/v1/auth/login', ADMIN)).accessToken ?? '';
  const tenant = await inject('POST', '/api/v1/tenants', { slug: 'bench', name: 'bench' }, root);
  const user = await inject(
    'POST',
    `/api/v1/tenants/${tenant.id}/users`,
    { email: 'admin@bench.test', password: 'bench-admin-pw-1', roles: ['tenant_admin'] },
    root,
  );
  const token =
    (
      await inject('POST', '/api/v1/auth/login', {
        email: 'admin@bench.test',
        password: 'bench-admin-pw-1',
        tenant: 'bench',
      })
    ).accessToken ?? '';
  const found = await app.services.tenants.find('bench');
  if (!found) throw new Error('no bench tenant');
  const ctx = systemContext('bench-realtime', toTenantRef(found));
  const publish = async (k: number, userId?: string) => {
    await app.services.events.publish(ctx, 'crm.tick', { sentAt: now(), k, ...(userId && { userId }) });
  };
  return { base, token, publish, userId: user.id ?? '' };
}

export async function realtime(): Promise<void> {
  const reference = await bare();
  const plexica = await ours();
  const row = (name: string, r: Run) => [
    name,
    `${r.open} (${r.failed} failed)`,
    r.connectMs,
    r.rssPerConnKB,
    r.heapPerConnKB,
    r.p50,
    r.p95,
    r.p99,
    r.max,
  ];
  const text = table(
    [
      'server',
      'connections',
      'connect all ms',
      'RSS KB/conn',
      'heap KB/conn',
      'P50 ms',
      'P95 ms',
      'P99 ms',
      'max ms',
    ],
    [
      row('Plexica (bus → stream log → tail → fan-out, PGlite)', plexica),
      row('bare ws (same fan-out)', reference),
    ],
  );
  const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(1) : 'n/a');
  const ratios = `ratios ours/bare: P50 ${ratio(plexica.p50, reference.p50)}×, P95 ${ratio(plexica.p95, reference.p95)}×, P99 ${ratio(plexica.p99, reference.p99)}×, heap/conn ${ratio(plexica.heapPerConnKB, reference.heapPerConnKB)}×, connect ${ratio(plexica.connectMs, reference.connectMs)}×`;
  console.log(`\nRealtime broadcast to ${N} streams, ${BROADCASTS} events\n${text}\n${ratios}`);
  await record(
    `realtime-${N}`,
    `## Realtime: ${N} WebSocket streams, broadcast latency (${stamp()})\n\n` +
      `Clients in a child process; latency from publish to each client's receipt, ${BROADCASTS} broadcasts, every client's receipt counted. ` +
      `Memory per connection is the server process's growth (after GC) over the connections.\n\n${text}\n\n${ratios}\n`,
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  if (process.env.PLEXICA_BENCH_RESUME) await realtimeResume();
  else if (process.env.PLEXICA_BENCH_USER) await realtimeUser();
  else await realtime();
  process.exit(0);
}
