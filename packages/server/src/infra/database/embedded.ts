import { mkdir, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import lockfile from 'proper-lockfile';
import { PlexicaError } from '../errors.js';
import { firstStartTemplate } from './embedded-template.js';

/**
 * PGlite runs in a worker thread behind `@electric-sql/pglite-socket`, so the
 * server speaks to it with the ordinary `pg` driver over a Unix socket and the
 * WASM engine never blocks the request thread. The worker's code is inline
 * (`eval`) so the same file works from TypeScript sources and from `dist/`.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  const { PGlite } = await import(workerData.pgliteUrl);
  const { PGLiteSocketServer } = await import(workerData.socketUrl);
  // a first start loads the pre-initialised database instead of running initdb
  const options = workerData.template
    ? { loadDataDir: new Blob([require('node:fs').readFileSync(workerData.template)]) }
    : {};
  const db = await PGlite.create(workerData.pgdata, options);
  const server = new PGLiteSocketServer({ db, path: workerData.socketPath, maxConnections: workerData.maxConnections });
  // pglite-socket writes each protocol message's reply separately (~5 writes a query): hold
  // the socket's writes from a chunk's arrival until the handler has answered all it held
  // (its 'data' event), so a query's replies leave in one write
  const handleConnection = server.handleConnection.bind(server);
  server.handleConnection = async (socket) => {
    let unanswered = 0;
    socket.on('data', () => { if (unanswered++ === 0) socket.cork(); });
    await handleConnection(socket);
    for (const handler of server.handlers) {
      if (handler.socket !== socket) continue;
      handler.addEventListener('data', () => { if (--unanswered === 0) socket.uncork(); });
    }
  };
  await server.start();
  parentPort.postMessage({ type: 'ready' });
  parentPort.on('message', async (msg) => {
    if (msg.type !== 'stop') return;
    try { await server.stop(); await db.close(); } finally { parentPort.postMessage({ type: 'stopped' }); }
  });
})().catch((err) => parentPort.postMessage({ type: 'error', message: String(err && err.stack || err) }));
`;

export interface EmbeddedPostgres {
  /** Directory holding the socket `.s.PGSQL.5432`: pass it to `pg` as `host`. */
  socketDir: string;
  stop(): Promise<void>;
}

/** Longest Unix socket path Linux accepts is 107 bytes; keep a margin. */
const MAX_SOCKET_PATH = 100;

/**
 * Locks the data dir (a second process gets a clear error, not a corrupted
 * database), then starts PGlite on `<dataDir>/pgdata`.
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  maxConnections: number,
): Promise<EmbeddedPostgres> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  let release: () => Promise<void>;
  try {
    // stale: a crashed process's lock is taken over after 10 s
    release = await lockfile.lock(dataDir, {
      lockfilePath: path.join(dataDir, 'plexica.lock'),
      stale: 10_000,
    });
  } catch (err) {
    throw new PlexicaError('PLX_DATABASE_UNAVAILABLE', {
      detail: `data dir ${dataDir} is in use by another plexica process (if that process crashed, retry in 10 s)`,
      cause: err,
    });
  }
  try {
    let socketDir = path.join(dataDir, 'run');
    if (path.join(socketDir, '.s.PGSQL.5432').length > MAX_SOCKET_PATH) {
      socketDir = await mkdtemp(path.join(os.tmpdir(), 'plexica-'));
    }
    await mkdir(socketDir, { recursive: true, mode: 0o700 });
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        pgliteUrl: import.meta.resolve('@electric-sql/pglite'),
        socketUrl: import.meta.resolve('@electric-sql/pglite-socket'),
        pgdata: path.join(dataDir, 'pgdata'),
        template: await firstStartTemplate(path.join(dataDir, 'pgdata')),
        socketPath: path.join(socketDir, '.s.PGSQL.5432'),
        maxConnections,
      },
    });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (msg: { type: string; message?: string }) => {
        if (msg.type === 'ready') resolve();
        else if (msg.type === 'error') reject(new Error(`embedded database failed to start: ${msg.message}`));
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`embedded database worker exited with code ${code}`)));
    });
    let stopped: Promise<void> | undefined;
    return {
      socketDir,
      stop() {
        stopped ??= (async () => {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 10_000);
            worker.on('message', (msg: { type: string }) => {
              if (msg.type === 'stopped') {
                clearTimeout(timer);
                resolve();
              }
            });
            worker.postMessage({ type: 'stop' });
          });
          await worker.terminate();
          await release();
        })();
        return stopped;
      },
    };
  } catch (err) {
    await release();
    throw err;
  }
}
