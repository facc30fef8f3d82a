import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { RequestContext } from '../../context.js';
import { isPlexicaError, PlexicaError } from '../../infra/errors.js';
import type { SignalChannel } from '../../infra/signals/index.js';
import type { PermissionRegistry } from '../../permissions.js';
import type { AppsService } from '../events/index.js';
import type { Authenticator, PrincipalChange } from '../identity/index.js';
import { authorizeSubscription } from './channels.js';
import type { RealtimeConfig } from './config.js';
import { createLogTail, type StreamEntry, type StreamLog } from './log.js';
import {
  type ControlFrame,
  type EncodedEntry,
  errorFrame,
  StreamSession,
  type StreamTransport,
} from './session.js';
import { createStreamCaps } from './stream-caps.js';
import { streamMetrics } from './stream-metrics.js';
import type { StreamTickets } from './tickets.js';

/** Close codes of the stream (WebSocket; an SSE stream just ends after its error event). */
export const CLOSE = {
  /** seed 002 / RFC 6455: the server restarts; reconnect (elsewhere) and resume. */
  restart: 1012,
  credentialEnded: 4401,
  heartbeat: 4408,
  slow: 4429,
} as const;

// identity's principal cache publishes its changes here (infra/signals contract, issue 12)
const PRINCIPALS_SIGNAL = 'identity.principals';

export type StreamContext = RequestContext & { tenant: NonNullable<RequestContext['tenant']> };

/**
 * The streams of this instance: authenticates them, keeps their
 * subscriptions, fans the log's entries out to them in seq order, beats,
 * drops the slow and the revoked, and closes them all with 1012 on shutdown.
 */
export interface RealtimeService {
  /** The stream's principal from a bearer credential or a one-time ticket. @throws 401 problems */
  authenticate(input: {
    bearer?: string;
    ticket?: string;
  }): Promise<{ ctx: StreamContext; credential: string }>;
  mintTicket(credential: string): Promise<{ ticket: string; expiresAt: string }>;
  /**
   * Refuses a stream over this instance's bounds per principal and per tenant (429
   * `PLX_REALTIME_TOO_MANY_STREAMS`): called before the upgrade or the event stream starts,
   * with nothing awaited between it and `open`.
   */
  admit(auth: { ctx: StreamContext }): void;
  open(auth: { ctx: StreamContext; credential: string }, transport: StreamTransport): StreamSession;
  /** A WebSocket frame as text. */
  receive(session: StreamSession, text: string): Promise<void>;
  subscribe(session: StreamSession, input: { channel: unknown; types?: unknown }): Promise<boolean>;
  /**
   * Joins `subscriptions`, then fills from `lastEventId` (SSE's Last-Event-ID, or the first
   * WebSocket frame) and goes live; nothing is sent live in between.
   */
  resume(
    session: StreamSession,
    lastEventId: unknown,
    subscriptions?: { channel: unknown; types?: unknown }[],
  ): Promise<void>;
  detach(session: StreamSession): void;
  readonly size: number;
  /** An entry this instance appended to the stream log (skips reading it back when it is next). */
  appended(entry: StreamEntry): void;
  start(): Promise<void>;
  /** Tells every stream to reconnect elsewhere (1012), stops the tail. */
  close(): Promise<void>;
}

export function createRealtimeService(deps: {
  config: RealtimeConfig;
  log: StreamLog;
  tickets: StreamTickets;
  signals: SignalChannel;
  authenticator: Authenticator;
  registry: PermissionRegistry;
  apps: AppsService;
  logger: Logger;
  metrics: Registry;
}): RealtimeService {
  const { config, log, authenticator, logger } = deps;
  const sessions = new Map<string, Set<StreamSession>>();
  const all = new Set<StreamSession>();
  let nextId = 1;

  const { messages, drops, fills, filled } = streamMetrics(deps.metrics, all);

  const tail = createLogTail({
    log,
    signals: deps.signals,
    pollIntervalMs: config.realtimePollIntervalMs,
    logger,
    onEntries(entries: StreamEntry[]) {
      for (const entry of entries) {
        const encoded: EncodedEntry = { entry };
        // the tenant's streams only: the others never match it, and their position need not move
        for (const session of sessions.get(entry.tenantId) ?? []) session.deliver(encoded);
      }
    },
  });

  const toContext = (authenticated: Awaited<ReturnType<Authenticator['authenticate']>>): StreamContext => {
    if (!authenticated.tenant)
      throw new PlexicaError('PLX_TENANT_REQUIRED', {
        detail: 'a stream belongs to a tenant: use a tenant credential',
      });
    return {
      traceId: `stream-${authenticated.principal.id}`,
      principal: authenticated.principal,
      tenant: authenticated.tenant,
    };
  };

  const slow = (session: StreamSession) => {
    drops.inc();
    const frame = errorFrame(new PlexicaError('PLX_REALTIME_SLOW_CONSUMER'));
    session.close(CLOSE.slow, 'slow consumer', frame);
    detach(session);
  };

  const caps = createStreamCaps<StreamSession>(config, (tenantId) => sessions.get(tenantId)?.size ?? 0);

  const open: RealtimeService['open'] = (auth, transport) => {
    const session = new StreamSession(nextId++, auth.ctx, auth.credential, transport, {
      log,
      head: () => tail.head,
      maxBufferedBytes: config.realtimeSendBufferBytes,
      onSlow: slow,
      onFilled: (n) => {
        fills.inc();
        filled.inc(n);
      },
      onSent: () => messages.inc(),
    });
    all.add(session);
    caps.opened(session, auth.ctx);
    const key = auth.ctx.tenant.id;
    const set = sessions.get(key) ?? new Set<StreamSession>();
    sessions.set(key, set);
    set.add(session);
    return session;
  };

  const detach = (session: StreamSession) => {
    all.delete(session);
    caps.closed(session);
    const set = sessions.get(session.ctx.tenant.id);
    set?.delete(session);
    if (set?.size === 0) sessions.delete(session.ctx.tenant.id);
  };

  const subscribe: RealtimeService['subscribe'] = async (session, input) => {
    try {
      const key = typeof input.channel === 'string' ? input.channel : '';
      if (!session.subscriptions.has(key) && session.subscriptions.size >= config.realtimeMaxSubscriptions)
        throw new PlexicaError('PLX_REALTIME_TOO_MANY_SUBSCRIPTIONS', {
          detail: `at most ${config.realtimeMaxSubscriptions} subscriptions per stream`,
        });
      const sub = await authorizeSubscription(session.ctx, input, deps);
      if (
        !session.subscriptions.has(sub.key) &&
        session.subscriptions.size >= config.realtimeMaxSubscriptions
      )
        throw new PlexicaError('PLX_REALTIME_TOO_MANY_SUBSCRIPTIONS');
      session.subscriptions.set(sub.key, sub);
      session.control({ type: 'subscribed', channel: sub.key, types: sub.types });
      return true;
    } catch (err) {
      if (!isPlexicaError(err)) logger.error({ err }, 'stream subscription failed');
      session.control(
        errorFrame(err, { channel: typeof input.channel === 'string' ? input.channel.slice(0, 100) : null }),
      );
      return false;
    }
  };

  const resume: RealtimeService['resume'] = async (session, lastEventId, subscriptions = []) => {
    session.hold();
    try {
      for (const input of subscriptions) await subscribe(session, input);
      const from = await session.checkResume(lastEventId);
      if (from === undefined) return;
      const sent = await session.fill(from);
      session.control({ type: 'resumed', lastEventId: String(lastEventId), filled: sent });
    } finally {
      session.release();
    }
  };

  const frameInvalid = (detail: string) => new PlexicaError('PLX_REALTIME_FRAME_INVALID', { detail });

  const handleFrame = async (session: StreamSession, frame: ControlFrame) => {
    const first = session.framesSeen === 0;
    session.framesSeen += 1;
    switch (frame.type) {
      case 'subscribe':
        await subscribe(session, { channel: frame.channel, types: frame.types });
        return;
      case 'unsubscribe': {
        const key = typeof frame.channel === 'string' ? frame.channel : '';
        if (!session.subscriptions.delete(key))
          throw frameInvalid(`not subscribed to "${key.slice(0, 100)}"`);
        session.control({ type: 'unsubscribed', channel: key });
        return;
      }
      case 'resume': {
        // the first frame, so nothing was sent live that the fill would send again
        if (!first) throw frameInvalid('resume must be the first frame of a stream');
        const list = frame.subscriptions ?? [];
        if (!Array.isArray(list)) throw frameInvalid('subscriptions must be a list');
        const inputs = list.map((item) => {
          const input = (item ?? {}) as { channel?: unknown; types?: unknown };
          return { channel: input.channel, types: input.types };
        });
        await resume(session, frame.lastEventId, inputs);
        return;
      }
      case 'ping':
        session.control({ type: 'pong' });
        return;
      case 'pong':
        return;
      default:
        throw frameInvalid('type is one of subscribe, unsubscribe, resume, ping, pong');
    }
  };

  // frames of one stream are handled one after the other: a resume finishes before the next subscribe
  const queues = new WeakMap<StreamSession, Promise<void>>();
  const receive: RealtimeService['receive'] = (session, text) => {
    session.lastHeard = Date.now();
    const run = async () => {
      if (session.closed) return;
      let frame: unknown;
      try {
        frame = JSON.parse(text);
      } catch {
        session.control(errorFrame(frameInvalid('a frame is a JSON object')));
        return;
      }
      try {
        if (
          !frame ||
          typeof frame !== 'object' ||
          Array.isArray(frame) ||
          typeof (frame as ControlFrame).type !== 'string'
        )
          throw frameInvalid('a frame is a JSON object with a type');
        await handleFrame(session, frame as ControlFrame);
      } catch (err) {
        if (!isPlexicaError(err)) logger.error({ err }, 'stream frame failed');
        session.control(errorFrame(err));
      }
    };
    const next = (queues.get(session) ?? Promise.resolve()).then(run);
    queues.set(session, next);
    return next;
  };

  /**
   * Checks credentials again; a revoked or expired one ends its streams, narrowed rights drop
   * subscriptions. Once per credential, however many streams share it: 15,000 streams of one
   * token were 15,000 lookups at each beat once the principal cache entry had expired.
   */
  const recheck = async (streams: Iterable<StreamSession>) => {
    const byCredential = new Map<string, StreamSession[]>();
    for (const session of streams) {
      const list = byCredential.get(session.credential) ?? [];
      list.push(session);
      byCredential.set(session.credential, list);
    }
    for (const [credential, list] of byCredential) {
      let ctx: StreamContext;
      try {
        ctx = toContext(await authenticator.authenticate(credential));
      } catch (err) {
        if (!isPlexicaError(err) || err.kind !== 'unauthenticated') {
          logger.warn({ err }, 'stream credential check failed; kept until the next beat');
          continue;
        }
        const frame = errorFrame(new PlexicaError('PLX_REALTIME_CREDENTIAL_ENDED'));
        for (const session of list) {
          session.close(CLOSE.credentialEnded, 'credential ended', frame);
          detach(session);
        }
        continue;
      }
      for (const session of list) {
        session.ctx = { ...session.ctx, principal: ctx.principal };
        for (const [key, sub] of session.subscriptions) {
          try {
            await authorizeSubscription(
              session.ctx,
              { channel: key, types: sub.types.length ? sub.types : undefined },
              deps,
            );
          } catch (err) {
            session.subscriptions.delete(key);
            session.control(errorFrame(err, { channel: key }));
          }
        }
      }
    }
  };

  const touches = (session: StreamSession, change: PrincipalChange) => {
    const p = session.ctx.principal;
    if (!p) return false;
    if (change.kind === 'session') return p.sessionId === change.id;
    if (change.kind === 'api_key') return p.type === 'api_key' && p.id === change.id;
    if (change.kind === 'user') return p.userId === change.id;
    return session.ctx.tenant.id === change.id;
  };

  let beat: NodeJS.Timeout | undefined;
  const offs: (() => void)[] = [];
  const heartbeat = () => {
    const deadline = Date.now() - 2 * config.realtimeHeartbeatMs;
    for (const session of all) {
      // two beats without a frame or a pong: the client or its network is gone
      if (session.transport.kind === 'ws' && session.lastHeard < deadline) {
        session.close(CLOSE.heartbeat, 'heartbeat timeout');
        detach(session);
        continue;
      }
      session.transport.ping();
    }
    void recheck([...all]).catch((err: unknown) => logger.error({ err }, 'stream credential recheck failed'));
  };

  return {
    async authenticate(input) {
      const credential =
        input.bearer ?? (input.ticket !== undefined ? await deps.tickets.redeem(input.ticket) : undefined);
      if (!credential)
        throw new PlexicaError('PLX_AUTH_REQUIRED', { detail: 'a bearer credential or a stream ticket' });
      return { ctx: toContext(await authenticator.authenticate(credential)), credential };
    },
    mintTicket: (credential) => deps.tickets.mint(credential, config.realtimeTicketSeconds),
    admit: ({ ctx }) => caps.admit(ctx),
    open,
    receive,
    subscribe,
    resume,
    detach,
    get size() {
      return all.size;
    },
    appended: (entry) => tail.offer(entry),
    async start() {
      await tail.start();
      offs.push(
        deps.signals.subscribe(PRINCIPALS_SIGNAL, (payload) => {
          const change = payload as PrincipalChange;
          void recheck([...all].filter((session) => touches(session, change))).catch((err: unknown) =>
            logger.error({ err }, 'stream credential recheck failed'),
          );
        }),
      );
      beat = setInterval(heartbeat, config.realtimeHeartbeatMs);
      beat.unref();
    },
    async close() {
      if (beat) clearInterval(beat);
      for (const off of offs.splice(0)) off();
      for (const session of all) session.close(CLOSE.restart, 'server restart', { type: 'restart' });
      all.clear();
      sessions.clear();
      await tail.stop();
    },
  };
}
