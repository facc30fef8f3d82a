import { toApiError } from '../errors.js';
import type { Transport } from '../transport.js';

/** A CloudEvents 1.0 envelope as the stream carries it. */
export interface StreamEvent<T = unknown> {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  time: string;
  subject?: string;
  data: T;
  tenantid?: string;
}

/** `user:me` (or `user:{id}`), `tenant`, `app:{id}`, optionally with type filters (`crm.*`). */
export type ChannelSpec = string | { channel: string; types?: string[] };

export interface RealtimeSubscribeOptions {
  channels: ChannelSpec[];
  onEvent(event: StreamEvent, id: string): void;
  /** A refused subscription, a malformed frame, or the credential ending (the stream then stops). */
  onError?(frame: { code: string; detail?: string; channel?: string | null }): void;
  /** Events since the last id are no longer retained: reload your state; the stream continues live. */
  onGap?(frame: { lastEventId: string; oldestEventId: string | null }): void;
  onStatus?(status: 'connecting' | 'open' | 'reconnecting' | 'closed'): void;
  /** Resume after this id (e.g. kept in storage across page loads). */
  lastEventId?: string;
  /** The server's heartbeat (PLEXICA_REALTIME_HEARTBEAT_MS); silence for 2.5 beats reconnects. */
  heartbeatMs?: number;
  /** Backoff between reconnects, doubled up to the maximum (with jitter). */
  minDelayMs?: number;
  maxDelayMs?: number;
  /** Node 22+ and browsers have a global WebSocket; pass one for other runtimes. */
  WebSocket?: typeof WebSocket;
}

export interface RealtimeSubscription {
  /** The id of the last event handed to `onEvent` (give it to a later `subscribe` as `lastEventId`). */
  readonly lastEventId: string | undefined;
  close(): void;
}

// the server's close codes after which reconnecting with the same credential cannot help
const FINAL_CLOSE_CODES = new Set([4401]);

/**
 * The tenant's events over `GET /api/v1/events/stream`, reconnecting with
 * backoff and resuming from the last id it saw (no event lost or repeated, a
 * `gap` when the server no longer holds them). Each connection opens with a
 * one-time ticket, so the credential never sits in a URL.
 *
 * @example
 * const sub = plexica.realtime.subscribe({
 *   channels: ['user:me', { channel: 'tenant', types: ['crm.deal.*'] }],
 *   onEvent: (event) => console.log(event.type, event.data),
 * });
 * sub.close();
 */
export function createRealtimeResource(transport: Transport) {
  return {
    subscribe(options: RealtimeSubscribeOptions): RealtimeSubscription {
      const Socket = options.WebSocket ?? globalThis.WebSocket;
      if (!Socket) throw new Error('no WebSocket in this runtime: pass options.WebSocket');
      const heartbeatMs = options.heartbeatMs ?? 30_000;
      const minDelay = options.minDelayMs ?? 500;
      const maxDelay = options.maxDelayMs ?? 30_000;
      const subscriptions = options.channels.map((c) => (typeof c === 'string' ? { channel: c } : c));
      let lastEventId = options.lastEventId;
      let socket: WebSocket | undefined;
      let stopped = false;
      let attempt = 0;
      let watchdog: ReturnType<typeof setTimeout> | undefined;
      let retry: ReturnType<typeof setTimeout> | undefined;

      const status = (s: 'connecting' | 'open' | 'reconnecting' | 'closed') => options.onStatus?.(s);
      const armWatchdog = () => {
        if (watchdog) clearTimeout(watchdog);
        watchdog = setTimeout(() => socket?.close(4000, 'heartbeat missed'), heartbeatMs * 2.5);
      };
      const scheduleReconnect = () => {
        if (stopped) return;
        status('reconnecting');
        const delay = Math.min(maxDelay, minDelay * 2 ** attempt) * (0.5 + Math.random() / 2);
        attempt += 1;
        retry = setTimeout(() => void connect(), delay);
      };

      const connect = async () => {
        status('connecting');
        let ticket: string;
        try {
          const res = await transport.send('/api/v1/events/stream/ticket', { method: 'POST' });
          const body = await res.json().catch(() => ({}));
          if (!res.ok) {
            const error = toApiError(res.status, body);
            if (res.status === 401 || res.status === 403) {
              stopped = true;
              options.onError?.({ code: error.code, detail: error.message });
              status('closed');
              return;
            }
            throw error;
          }
          ticket = (body as { ticket: string }).ticket;
        } catch {
          scheduleReconnect();
          return;
        }
        if (stopped) return;
        const url = `${transport.baseUrl.replace(/^http/, 'ws')}/api/v1/events/stream?ticket=${encodeURIComponent(ticket)}`;
        const ws = new Socket(url);
        socket = ws;
        ws.onopen = () => {
          attempt = 0;
          armWatchdog();
          status('open');
          if (lastEventId !== undefined)
            ws.send(JSON.stringify({ type: 'resume', lastEventId, subscriptions }));
          else for (const sub of subscriptions) ws.send(JSON.stringify({ type: 'subscribe', ...sub }));
        };
        ws.onmessage = (message: MessageEvent) => {
          armWatchdog();
          const frame = JSON.parse(String(message.data)) as { type: string; [k: string]: unknown };
          if (frame.type === 'event') {
            lastEventId = frame.id as string;
            options.onEvent(frame.event as StreamEvent, frame.id as string);
          } else if (frame.type === 'ping') {
            ws.send('{"type":"pong"}');
          } else if (frame.type === 'gap') {
            lastEventId = undefined;
            options.onGap?.(frame as unknown as { lastEventId: string; oldestEventId: string | null });
          } else if (frame.type === 'error') {
            options.onError?.(frame as unknown as { code: string; detail?: string });
          }
        };
        ws.onclose = (event: { code: number }) => {
          if (watchdog) clearTimeout(watchdog);
          if (socket === ws) socket = undefined;
          if (FINAL_CLOSE_CODES.has(event.code)) {
            stopped = true;
            status('closed');
            return;
          }
          scheduleReconnect();
        };
      };
      void connect();

      return {
        get lastEventId() {
          return lastEventId;
        },
        close() {
          stopped = true;
          if (retry) clearTimeout(retry);
          if (watchdog) clearTimeout(watchdog);
          socket?.close(1000, 'closed by the client');
          status('closed');
        },
      };
    },
  };
}
