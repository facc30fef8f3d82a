import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../../test/harness.js';

const fixture = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../test/fixtures/shutdown-server.ts',
);

interface Started {
  child: ChildProcess;
  address: string;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts the fixture server on the test app's (closed) data dir and waits until its jobs are enqueued. */
async function startServer(
  t: TestApp,
  marker: string,
  options: { jobMs: number; jobs: number; timeoutMs: number },
) {
  let output = '';
  const child = fork(fixture, {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const address = await new Promise<string>((resolve, reject) => {
    child.once('message', (msg: { address: string }) => resolve(msg.address));
    void exited.then((code) => reject(new Error(`server exited with ${code}: ${output}`)));
    child.send({
      config: { ...t.config, shutdownTimeoutMs: options.timeoutMs, port: 0 },
      marker,
      jobMs: options.jobMs,
      jobs: options.jobs,
    });
  });
  return { child, address, output: () => output, exited } satisfies Started;
}

const events = (marker: string) =>
  readFileSync(marker, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [kind, at, id] = line.split(' ');
      return { kind, at: Number(at), id };
    });

/** Sends a request whose body arrives slowly, so it is in flight when the signal comes. @returns the status line */
function slowRequest(address: string, bodyMs: number): Promise<string> {
  const url = new URL(address);
  const body = JSON.stringify({ email: 'nobody@shutdown.test', password: 'not-the-password-1' });
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname, () => {
      socket.write(
        `POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
      );
      socket.write(body.slice(0, 5));
      setTimeout(() => socket.write(body.slice(5)), bodyMs);
    });
    let reply = '';
    socket.on('data', (chunk) => {
      reply += chunk;
    });
    socket.on('close', () => resolve(reply.split('\r\n')[0] ?? ''));
    socket.on('error', reject);
  });
}

// issue 11 item 6; the embedded database: one process owns the data dir, the test app is closed first
describe('graceful shutdown (plexica start, SIGTERM)', () => {
  let t: TestApp | undefined;
  let server: Started | undefined;
  afterEach(async () => {
    server?.child.kill('SIGKILL');
    await t?.close();
  });

  const prepare = async () => {
    t = await createTestApp('pglite', { jobsPollIntervalSeconds: 1 });
    await t.app.close(); // frees the data dir; t.close() later removes it
    const marker = path.join(t.config.dataDir, 'shutdown-marker.log');
    writeFileSync(marker, '');
    return marker;
  };
  const waitForStarts = async (marker: string, n: number) => {
    const deadline = Date.now() + 30_000;
    while (events(marker).filter((e) => e.kind === 'start').length < n) {
      if (Date.now() > deadline) throw new Error(`fewer than ${n} jobs started: ${server?.output()}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  it('stops fetching at SIGTERM, finishes the running jobs and the request in flight, exits 0', async () => {
    const marker = await prepare();
    server = await startServer(t!, marker, { jobMs: 1500, jobs: 12, timeoutMs: 10_000 });
    await waitForStarts(marker, 4);
    // the body takes longer than a job: a worker still fetching would start new jobs meanwhile
    const request = slowRequest(server.address, 2500);
    await new Promise((r) => setTimeout(r, 100));
    const signalledAt = Date.now();
    server.child.kill('SIGTERM');
    const [code, status] = await Promise.all([server.exited, request]);
    expect(status).toBe('HTTP/1.1 401 Unauthorized');
    expect(code).toBe(0);
    const log = events(marker);
    expect(log.filter((e) => e.kind === 'start' && e.at > signalledAt)).toEqual([]);
    const started = log.filter((e) => e.kind === 'start').map((e) => e.id);
    const done = log.filter((e) => e.kind === 'done').map((e) => e.id);
    expect(done.sort()).toEqual(started.sort());
    expect(server.output()).toContain('shut down cleanly');
  }, 90_000);

  it('exits 1 naming what the timeout cut when jobs outlast it', async () => {
    const marker = await prepare();
    server = await startServer(t!, marker, { jobMs: 20_000, jobs: 4, timeoutMs: 1000 });
    await waitForStarts(marker, 4);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(1);
    expect(server.output()).toContain('shutdown timeout cut: 4 running jobs given back');
  }, 90_000);
});
