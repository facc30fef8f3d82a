import { createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';

/** A message a pull handed over, with what the driver needs of JetStream's delivery metadata. */
export interface PulledMessage {
  subject: string;
  data: Uint8Array;
  key: string | null;
  /** Stream sequence: the event's position. */
  seq: number;
  /** 1 on the first delivery to this consumer. */
  deliveries: number;
  ack(): void;
  nak(delayMs?: number): void;
}

/** Longest wait for a pull's answer (a no-wait pull is answered at once; this covers a lost one). */
const PULL_TIMEOUT_MS = 2000;

/**
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`, or the
 * form with domain and account hash in front (12 tokens).
 */
function ackInfo(reply: string): { deliveries: number; seq: number } | undefined {
  const t = reply.split('.');
  const at = t.length === 9 ? 4 : t.length >= 11 ? 6 : -1;
  if (at < 0 || t[0] !== '$JS' || t[1] !== 'ACK') return undefined;
  return { deliveries: Number(t[at]), seq: Number(t[at + 1]) };
}

/**
 * No-wait pulls from one durable consumer, one at a time: a request for up to
 * `batch` messages that the server answers at once with what it has (and a
 * 404/408 status when that is fewer). The nats.js client's `fetch` and
 * `consume` keep a request open for at least a second, during which the
 * server hands the member messages even while its handler is busy (a hung
 * member would take the redeliveries meant for the others); a member that
 * asks only when it is idle holds nothing it cannot work on.
 */
export function createPuller(nc: NatsConnection, api: string, keyHeader: string) {
  const inbox = createInbox();
  let pending: { got: PulledMessage[]; batch: number; done(): void } | undefined;
  // messages of a pull that already ended (a late answer): handed out with the next one
  const strays: PulledMessage[] = [];
  const sub: Subscription = nc.subscribe(inbox, {
    callback: (err, m: Msg) => {
      if (err) return;
      const info = m.reply ? ackInfo(m.reply) : undefined;
      if (!info) {
        // a status: 404 no messages, 408 timeout / requests pending, 409 consumer deleted…
        if (m.headers?.code) pending?.done();
        return;
      }
      const message: PulledMessage = {
        subject: m.subject,
        data: m.data,
        key: m.headers?.get(keyHeader) || null,
        ...info,
        ack: () => m.respond('+ACK'),
        nak: (delayMs) =>
          m.respond(delayMs ? `-NAK ${JSON.stringify({ delay: delayMs * 1_000_000 })}` : '-NAK'),
      };
      if (!pending) {
        strays.push(message);
        return;
      }
      pending.got.push(message);
      if (pending.got.length >= pending.batch) pending.done();
    },
  });
  return {
    /** What the consumer has now, at most `batch`; `timedOut` when the server did not answer. */
    pull(batch: number): Promise<{ messages: PulledMessage[]; timedOut: boolean }> {
      return new Promise((resolve) => {
        const got = strays.splice(0);
        if (got.length >= batch) {
          resolve({ messages: got, timedOut: false });
          return;
        }
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          pending?.done();
        }, PULL_TIMEOUT_MS);
        pending = {
          got,
          batch,
          done() {
            clearTimeout(timer);
            pending = undefined;
            resolve({ messages: got, timedOut });
          },
        };
        nc.publish(api, JSON.stringify({ batch, no_wait: true }), { reply: inbox });
      });
    },
    close() {
      sub.unsubscribe();
      // what arrived after the last pull: to the group's other members now
      for (const m of strays.splice(0)) m.nak();
    },
  };
}
