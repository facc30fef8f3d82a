import type { RequestContext } from '../../context.js';
import { isPlexicaError, PlexicaError } from '../../infra/errors.js';
import type { Subscription } from './channels.js';
import type { StreamEntry, StreamLog } from './log.js';

/** What a stream sends besides events. */
export type ControlFrame = { type: string; [field: string]: unknown };

/** Where a session's frames go: a WebSocket or an SSE response. */
export interface StreamTransport {
  readonly kind: 'ws' | 'sse';
  /** An event, serialised once per entry for every stream of the same transport. */
  sendEvent(encoded: EncodedEntry): void;
  sendControl(frame: ControlFrame): void;
  /** Bytes accepted and not yet handed to the network. */
  buffered(): number;
  /** A heartbeat: a protocol ping and a ping frame (WebSocket) or a comment (SSE). */
  ping(): void;
  close(code: number, reason: string): void;
}

/** An entry with its serialised forms, made when the first stream of a transport needs one. */
export interface EncodedEntry {
  entry: StreamEntry;
  ws?: string;
  sse?: string;
}

export const errorFrame = (err: unknown, extra: Record<string, unknown> = {}): ControlFrame => {
  const error = isPlexicaError(err) ? err : new PlexicaError('PLX_INTERNAL');
  return {
    type: 'error',
    code: error.code,
    title: error.title,
    ...(error.message !== error.title && error.kind !== 'internal' && { detail: error.message }),
    ...extra,
  };
};

const FILL_PAGE = 500;
const EVENT_ID = /^\d{1,15}$/;

/**
 * One client's stream. Its `position` is the last seq of the log it has
 * been given everything matching up to (sent live or filled from the log), so
 * live entries at or below it are not sent again, and a resume fills
 * (`lastEventId`, head] before going live: no duplicate, no gap.
 */
export class StreamSession {
  readonly subscriptions = new Map<string, Subscription>();
  position: number;
  lastHeard = Date.now();
  closed = false;
  /** Frames the client sent so far (a resume must be the first). */
  framesSeen = 0;
  private filling = false;

  constructor(
    readonly id: number,
    public ctx: RequestContext & { tenant: NonNullable<RequestContext['tenant']> },
    /** The access token or API key behind the stream, checked again on each beat and on revocations. */
    readonly credential: string,
    readonly transport: StreamTransport,
    private readonly deps: {
      log: StreamLog;
      head(): number;
      maxBufferedBytes: number;
      onSlow(session: StreamSession): void;
      onFilled(events: number): void;
      onSent(): void;
    },
  ) {
    this.position = deps.head();
  }

  /** A live entry from this instance's tail (in seq order). */
  deliver(encoded: EncodedEntry): void {
    if (this.closed || this.filling || encoded.entry.seq <= this.position) return;
    this.position = encoded.entry.seq;
    if (encoded.entry.tenantId !== this.ctx.tenant.id) return;
    this.sendIfMatching(encoded);
  }

  control(frame: ControlFrame): void {
    if (this.closed) return;
    this.transport.sendControl(frame);
    this.checkBuffer();
  }

  private sendIfMatching(encoded: EncodedEntry): boolean {
    for (const sub of this.subscriptions.values()) {
      if (sub.match(encoded.entry.event)) {
        this.transport.sendEvent(encoded);
        this.deps.onSent();
        this.checkBuffer();
        return true;
      }
    }
    return false;
  }

  private checkBuffer() {
    if (!this.closed && this.transport.buffered() > this.deps.maxBufferedBytes) this.deps.onSlow(this);
  }

  /**
   * Checks a resume id: ours (digits, not past the head), of this tenant, and
   * still retained. @returns where to fill from, or undefined for a gap (told to the client)
   */
  async checkResume(lastEventId: unknown): Promise<number | undefined> {
    const { log } = this.deps;
    if (typeof lastEventId !== 'string' || !EVENT_ID.test(lastEventId))
      throw new PlexicaError('PLX_REALTIME_RESUME_INVALID', {
        detail: 'an event id is the digits a frame carried',
      });
    const from = Number(lastEventId);
    const head = Math.max(this.deps.head(), await log.head());
    if (from > head)
      throw new PlexicaError('PLX_REALTIME_RESUME_INVALID', {
        detail: `no event ${from} on this stream yet`,
      });
    const owner = from > 0 ? await log.tenantOf(from) : undefined;
    if (owner !== undefined && owner !== this.ctx.tenant.id)
      throw new PlexicaError('PLX_REALTIME_RESUME_FOREIGN');
    const oldest = await log.oldest();
    // events after `from` were trimmed: what is retained would still leave a hole
    if (from < head && (oldest === undefined || from < oldest - 1)) {
      this.control({
        type: 'gap',
        lastEventId,
        oldestEventId: oldest === undefined ? null : String(oldest),
        detail: 'events after this id are no longer retained: reload, then the stream continues live',
      });
      return undefined;
    }
    return from;
  }

  /**
   * Holds live delivery while a resume sets up its subscriptions and checks its
   * id: what arrives meanwhile is either filled from the log or, when the
   * resume is refused or the gap is too old, skipped by `release`.
   */
  hold(): void {
    this.filling = true;
  }

  /** Ends a hold that no fill ended: live from the head on. */
  release(): void {
    if (!this.filling) return;
    this.position = Math.max(this.position, this.deps.head());
    this.filling = false;
  }

  /** Sends what matched in (`from`, head], then goes live at the head it reached. @returns events sent */
  async fill(from: number): Promise<number> {
    const { log } = this.deps;
    this.filling = true;
    let cursor = from;
    let sent = 0;
    try {
      for (;;) {
        const upTo = this.deps.head();
        while (cursor < upTo && !this.closed) {
          const entries = await log.tenantRange(this.ctx.tenant.id, cursor, upTo, FILL_PAGE);
          for (const entry of entries) if (this.sendIfMatching({ entry })) sent += 1;
          cursor = entries.length < FILL_PAGE ? upTo : (entries.at(-1)?.seq ?? upTo);
        }
        // no await between this check and going live: the tail hands out nothing in between
        if (this.deps.head() <= cursor || this.closed) break;
      }
      this.position = Math.max(cursor, this.position);
    } finally {
      this.filling = false;
    }
    this.deps.onFilled(sent);
    return sent;
  }

  close(code: number, reason: string, frame?: ControlFrame): void {
    if (this.closed) return;
    if (frame) this.transport.sendControl(frame);
    this.closed = true;
    this.transport.close(code, reason);
  }
}
