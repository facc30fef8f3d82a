import { randomUUID } from 'node:crypto';
import { type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { type WebSocket, WebSocketServer } from 'ws';
import { STATUS_BY_KIND, toPlexicaError } from '../../http/problem.js';
import type { Server } from '../../http/types.js';
import { isPlexicaError, PlexicaError } from '../../infra/errors.js';
import { type RateLimitStore, rateLimitedError } from '../../infra/rate-limit/store.js';
import type { RealtimeService } from './service.js';
import type { EncodedEntry, StreamTransport } from './session.js';

export const STREAM_PATH = '/api/v1/events/stream';
const BEARER = /^Bearer\s+(\S+)\s*$/i;

/** A problem document written on the socket before any upgrade: the client gets HTTP, not a WebSocket. */
function refuse(socket: Duplex, err: unknown, path: string): void {
  const error = toPlexicaError(err);
  const status = STATUS_BY_KIND[error.kind];
  const body = JSON.stringify({
    type: `urn:plexica:problem:${error.code}`,
    title: error.title,
    status,
    ...(error.kind !== 'internal' && error.message !== error.title && { detail: error.message }),
    ...(typeof error.extra?.retryAfter === 'number' && { retryAfter: error.extra.retryAfter }),
    instance: path,
    code: error.code,
    traceId: randomUUID(),
  });
  const retryAfter = error.extra?.retryAfter;
  socket.end(
    [
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
      'Content-Type: application/problem+json',
      `Content-Length: ${Buffer.byteLength(body)}`,
      ...(status === 401 ? ['WWW-Authenticate: Bearer'] : []),
      ...(typeof retryAfter === 'number' ? [`Retry-After: ${retryAfter}`] : []),
      'Connection: close',
      '',
      body,
    ].join('\r\n'),
  );
}

function wsTransport(ws: WebSocket): StreamTransport {
  return {
    kind: 'ws',
    sendEvent(encoded: EncodedEntry) {
      encoded.ws ??= `{"type":"event","id":"${encoded.entry.seq}","event":${JSON.stringify(encoded.entry.event)}}`;
      ws.send(encoded.ws);
    },
    sendControl(frame) {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(frame));
    },
    buffered: () => ws.bufferedAmount,
    ping() {
      if (ws.readyState !== ws.OPEN) return;
      ws.ping();
      // browsers cannot see protocol pings: a frame tells their code the server is alive
      ws.send('{"type":"ping"}');
    },
    close(code, reason) {
      ws.close(code, reason);
      // a client that reads nothing never completes the closing handshake
      setTimeout(() => ws.terminate(), 1000).unref();
    },
  };
}

/**
 * `GET /api/v1/events/stream` with `Upgrade: websocket`: authenticated before
 * the upgrade (401 problem on the socket otherwise), by the Authorization
 * header or a one-time `?ticket=`. Frames larger than the bound close the
 * stream (1009, by ws).
 */
export function attachWebSocketStream(
  server: Server,
  deps: {
    service: RealtimeService;
    maxFrameBytes: number;
    logger: Logger;
    /** Failed credentials count against the address's anonymous window, as on every other route. */
    failures: { store: RateLimitStore; windowMs: number; max: number };
  },
): () => void {
  const { service, failures } = deps;
  // the upgrade never reaches Fastify's guard: a flood of wrong credentials is bounded here
  const countFailure = async (err: unknown, ip: string): Promise<unknown> => {
    if (!isPlexicaError(err) || err.kind !== 'unauthenticated') return err;
    const { count, resetInMs } = await failures.store.hit(`anonymous:rl:${ip}`, failures.windowMs);
    return count > failures.max
      ? rateLimitedError('too many failed credentials from this address', resetInMs)
      : err;
  };
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: deps.maxFrameBytes,
    perMessageDeflate: false,
  });
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://stream');
    if (url.pathname !== STREAM_PATH) {
      refuse(
        socket,
        new PlexicaError('PLX_ROUTE_NOT_FOUND', { detail: `no WebSocket at ${url.pathname}` }),
        url.pathname,
      );
      return;
    }
    const header = req.headers.authorization;
    const bearer = header ? BEARER.exec(header)?.[1] : undefined;
    const ticket = url.searchParams.get('ticket') ?? undefined;
    service
      .authenticate({ ...(bearer && { bearer }), ...(ticket !== undefined && { ticket }) })
      .then((auth) => {
        if (socket.destroyed) return;
        service.admit(auth);
        wss.handleUpgrade(req, socket, head, (ws) => {
          const session = service.open(auth, wsTransport(ws));
          ws.on('message', (data, isBinary) => {
            if (isBinary) {
              session.lastHeard = Date.now();
              session.control({
                type: 'error',
                code: 'PLX_REALTIME_FRAME_INVALID',
                detail: 'frames are JSON text',
              });
              return;
            }
            void service.receive(session, data.toString());
          });
          ws.on('pong', () => {
            session.lastHeard = Date.now();
          });
          ws.on('error', (err) => deps.logger.debug({ err }, 'stream socket error'));
          ws.on('close', () => {
            session.closed = true;
            service.detach(session);
          });
        });
      })
      .catch((err: unknown) => countFailure(err, req.socket.remoteAddress ?? 'unknown'))
      .then((err) => err !== undefined && refuse(socket, err, url.pathname))
      .catch((err: unknown) => refuse(socket, err, url.pathname));
  };
  server.server.on('upgrade', onUpgrade);
  return () => {
    server.server.off('upgrade', onUpgrade);
    wss.close();
  };
}
