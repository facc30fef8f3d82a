import type { Transaction } from '../../../infra/database/transaction.js';
import type { CloudEvent, OutgoingEvent } from '../envelope.js';

/** One event handed to one member of a consumer group. */
export interface DriverDelivery {
  /** Where the event sits in the engine's log (a bigint, a stream id, a stream sequence), as text. */
  position: string;
  topic: string;
  key: string | null;
  event: CloudEvent;
  /** 1 on the first delivery to this group; counts redeliveries after nacks and ack timeouts. */
  attempt: number;
  /** Done: never delivered to this group again. */
  ack(): Promise<void>;
  /** Not done: delivered again (to any member) after `delayMs`. */
  nack(delayMs: number): Promise<void>;
}

export interface ConsumerSpec {
  /** The consumer group: every group gets every matching event; its members share them. */
  group: string;
  /** Topic patterns (see `parseTopicPattern`); already validated. */
  patterns: string[];
  /** An unacked delivery goes back to the group after this long (its member died or hangs). */
  ackTimeoutMs: number;
  /** Most deliveries handed over at once. */
  batchSize: number;
  /** Where a group that does not exist yet starts: new events only (default) or the whole retained log. */
  from: 'latest' | 'earliest';
  /**
   * A group of one process (it must see every event itself): deleted when it closes, and, where
   * the engine can, after it has been idle for an hour (its process died).
   */
  ephemeral: boolean;
}

/** A running member of a group; `stop` waits for the batch in hand. */
export interface Consumption {
  stop(): Promise<void>;
}

export type SeekPoint = { position: string } | { time: Date };

/**
 * What an event engine must do for the bus. The bus itself (envelopes, topics,
 * outbox, retries, dead letters, per-key batching) is engine-independent, so a
 * driver is one file: a Kafka driver would map groups, positions (offsets) and
 * seek onto the same methods.
 *
 * The ordering promise: an event with key K is not handed to any member of a
 * group while an earlier event with key K is delivered to that group and not
 * yet acked.
 */
export interface EventDriver {
  /** Appends in order; resolves once the engine holds them. */
  append(events: OutgoingEvent[]): Promise<void>;
  /**
   * Optional capability: appends inside the caller's database transaction, so the events
   * exist only if it commits. Without it the bus writes them to the outbox table in that
   * transaction and relays them to `append` after the commit.
   */
  appendIn?(tx: Transaction, events: OutgoingEvent[]): Promise<void>;
  /** Calls `onBatch` with deliveries for this member until stopped; never two batches at once. */
  consume(spec: ConsumerSpec, onBatch: (deliveries: DriverDelivery[]) => Promise<void>): Promise<Consumption>;
  /** Moves a group so that its next deliveries start at `point` (replay); creates the group when needed. */
  seek(spec: ConsumerSpec, point: SeekPoint): Promise<void>;
  /** Forgets the group: its position and what it has not acked. */
  deleteGroup(group: string): Promise<void>;
  /** Events of the group's log not yet acked by it (what it still has to work through). */
  lag(group: string): Promise<number>;
  /** Round-trip to the engine in ms; throws when it is down. */
  ping(): Promise<number>;
  /** Drops what retention no longer keeps: older than `maxAgeMs`, beyond `maxEvents`. @returns events removed, when the engine says */
  trim(retention: { maxAgeMs: number; maxEvents: number }): Promise<number>;
  close(): Promise<void>;
}
