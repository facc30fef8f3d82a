import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { WebSocket } from 'ws';

// biome-ignore lint/suspicious/noExplicitAny: tests assert frames field by field
export type Frame = any;

/** A WebSocket client of /api/v1/events/stream for tests: collects frames, waits for matching ones. */
export class StreamClient {
  readonly frames: Frame[] = [];
  private waiters: (() => void)[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()));
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.closed = new Promise((resolve) =>
      ws.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() });
        for (const wake of this.waiters.splice(0)) wake();
      }),
    );
  }

  /** Opens the stream; rejects with the HTTP status and problem document when it is refused. */
  static connect(baseUrl: string, auth: { token?: string; ticket?: string } = {}): Promise<StreamClient> {
    const url = `${baseUrl.replace(/^http/, 'ws')}/api/v1/events/stream${auth.ticket ? `?ticket=${auth.ticket}` : ''}`;
    const ws = new WebSocket(url, auth.token ? { headers: { authorization: `Bearer ${auth.token}` } } : {});
    const client = new StreamClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        res.on('end', () => reject({ status: res.statusCode, body: JSON.parse(body || '{}') }));
      });
      ws.once('error', (err) => reject(err));
    });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Removes and returns the first frame matching `pred`, waiting up to `timeoutMs` for it. */
  async take(pred: (frame: Frame) => boolean, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.frames.findIndex(pred);
      if (index >= 0) return this.frames.splice(index, 1)[0];
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `no matching frame in ${timeoutMs} ms; got ${JSON.stringify(this.frames).slice(0, 500)}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Frames of type `event`, in arrival order, removed from the buffer. */
  events(): Frame[] {
    const events = this.frames.filter((f) => f.type === 'event');
    for (const e of events) this.frames.splice(this.frames.indexOf(e), 1);
    return events;
  }

  close(): void {
    this.ws.close();
  }
}

/**
 * A WebSocket client that never reads after the handshake (a raw socket, so
 * no library resumes it): what a stalled browser tab looks like to the server.
 */
export async function connectStalled(baseUrl: string, token: string, frames: unknown[]): Promise<net.Socket> {
  const url = new URL(baseUrl);
  const socket = net.connect(Number(url.port), url.hostname);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(
    [
      'GET /api/v1/events/stream HTTP/1.1',
      `Host: ${url.host}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13',
      `Authorization: Bearer ${token}`,
      '',
      '',
    ].join('\r\n'),
  );
  const head = await new Promise<string>((resolve) =>
    socket.once('data', (chunk: Buffer) => resolve(chunk.toString())),
  );
  if (!head.startsWith('HTTP/1.1 101')) throw new Error(`upgrade refused: ${head.slice(0, 200)}`);
  socket.pause();
  for (const frame of frames) {
    const payload = Buffer.from(JSON.stringify(frame));
    if (payload.length > 125) throw new Error('connectStalled sends short frames only');
    const mask = randomBytes(4);
    const masked = Buffer.from(payload.map((byte, i) => byte ^ (mask[i % 4] ?? 0)));
    socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]));
  }
  return socket;
}
