import { createHash } from 'node:crypto';
import {
  AckPolicy,
  type ConsumerConfig,
  DeliverPolicy,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { PlexicaError } from '../../../infra/errors.js';
import { type CloudEvent, patternsRegex } from '../envelope.js';
import type { ConsumerSpec, Consumption, DriverDelivery, EventDriver } from './event-driver.js';
import { createPuller, type PulledMessage } from './nats-pull.js';

const decoder = new TextDecoder();

/** A stream name that is also one subject token. */
const NATS_STREAM_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export interface NatsEventDriverOptions {
  natsUrl: string;
  /** The JetStream stream's name, also the first token of its subjects. */
  stream: string;
  /** Key partitions of a new stream (an existing stream keeps the count it was made with). */
  partitions: number;
  logger: Pick<Logger, 'warn'>;
  /** Idle members look this often; a publish wakes them at once. */
  pollIntervalMs: number;
  retention: { maxAgeMs: number; maxEvents: number };
}

const KEY_HEADER = 'Plexica-Key';
/** Events without a key: as many in flight per group as its members take. */
const UNKEYED_MAX_ACK_PENDING = 20_000;
// JetStream API error codes
const NOT_FOUND = 10014;
const STREAM_NOT_FOUND = 10059;

const ns = (ms: number) => ms * 1_000_000;

/** FNV-1a: a key's partition, the same in every process and release. */
function partitionOf(key: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % partitions;
}

/** A consumer name for a bus group (names cannot hold dots or wildcards; the hash keeps two groups apart). */
function durableOf(group: string, part: string): string {
  const readable = group.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 60);
  const hash = createHash('sha256').update(group).digest('hex').slice(0, 12);
  return `${readable}-${hash}-${part}`;
}

const apiCode = (err: unknown): number | undefined =>
  err instanceof JetStreamApiError ? err.code : undefined;

/**
 * NATS JetStream: one stream for every topic, on subjects
 * `{stream}.{partition}.{topic}`. An event with a key goes to partition
 * `k{hash(key) mod n}`, one without to `u`. A bus group is one durable pull
 * consumer per partition: the key partitions have `max_ack_pending` 1 (the
 * engine hands a partition's next event to no member of the group before the
 * one before it is acked: the order per key, across members and processes),
 * the unkeyed one has a large window. The price of the order is that keys
 * sharing a partition wait for each other; more partitions, less waiting.
 * Topic filtering is done here (NATS 2.9 consumers have one filter subject).
 * A consumer's start cannot be moved in place on 2.9, so a replay recreates
 * the group's consumers at the new start; running members follow, since the
 * client re-attaches to a consumer of the same name.
 */
export async function createNatsEventDriver(options: NatsEventDriverOptions): Promise<EventDriver> {
  const { stream, logger } = options;
  if (!NATS_STREAM_NAME.test(stream)) throw new Error(`not a JetStream stream name: ${stream}`);
  let nc: NatsConnection;
  try {
    nc = await connect({ servers: options.natsUrl, name: 'plexica-events', maxReconnectAttempts: -1 });
  } catch (cause) {
    throw new PlexicaError('PLX_EVENTS_UNAVAILABLE', {
      detail: `NATS at PLEXICA_NATS_URL (${options.natsUrl}) is unreachable`,
      cause,
    });
  }
  const js: JetStreamClient = jetstream(nc);
  const jsm: JetStreamManager = await jetstreamManager(nc).catch(async (cause: unknown) => {
    await nc.close();
    throw new PlexicaError('PLX_EVENTS_UNAVAILABLE', {
      detail: 'NATS runs without JetStream (start nats-server with -js)',
      cause,
    });
  });
  const retentionConfig = (r: NatsEventDriverOptions['retention']) => ({
    max_age: ns(r.maxAgeMs),
    max_msgs: r.maxEvents,
  });
  const description = (n: number) => `Plexica event bus; partitions=${n}`;
  let partitions = options.partitions;
  try {
    const info = await jsm.streams.info(stream);
    const made = Number(/partitions=(\d+)/.exec(info.config.description ?? '')?.[1]);
    if (made > 0 && made !== partitions) {
      logger.warn(
        { stream, configured: partitions, stream_partitions: made },
        'the NATS event stream keeps the partition count it was made with',
      );
      partitions = made;
    }
  } catch (err) {
    if (apiCode(err) !== STREAM_NOT_FOUND) throw err;
    await jsm.streams.add({
      name: stream,
      subjects: [`${stream}.>`],
      description: description(partitions),
      duplicate_window: ns(120_000),
      ...retentionConfig(options.retention),
    });
  }
  // a publish names the partitions it wrote to, so members pull those at once; each member
  // pulls every partition once per poll interval (a lost wake, a redelivery after a timeout)
  const wakeSubject = `_PLEXICA_WAKE.${stream}`;
  const listeners = new Set<(parts: string[]) => void>();
  nc.subscribe(wakeSubject, {
    callback: (_err, m) => {
      const named = m.string().split(',');
      for (const listen of listeners) listen(named);
    },
  });
  const parts = ['u', ...Array.from({ length: partitions }, (_, i) => `k${i}`)];
  const partOf = (key: string | null) => (key === null ? 'u' : `k${partitionOf(key, partitions)}`);
  const subjectOf = (topic: string, key: string | null) => `${stream}.${partOf(key)}.${topic}`;
  const topicOfSubject = (subject: string) => subject.slice(subject.indexOf('.', stream.length + 1) + 1);

  const consumerConfig = (spec: ConsumerSpec, part: string, start: Partial<ConsumerConfig>) => ({
    durable_name: durableOf(spec.group, part),
    description: `Plexica event group ${spec.group.slice(0, 200)}`,
    filter_subject: `${stream}.${part}.>`,
    ack_policy: AckPolicy.Explicit,
    ack_wait: ns(spec.ackTimeoutMs),
    max_ack_pending: part === 'u' ? UNKEYED_MAX_ACK_PENDING : 1,
    max_waiting: 4096,
    // a dead process's own group goes away by itself (closing it deletes it at once)
    ...(spec.ephemeral ? { inactive_threshold: ns(3_600_000) } : {}),
    ...start,
  });

  /** The start of a new group: what comes after the stream's last event now, or all it keeps. */
  const newGroupStart = async (spec: ConsumerSpec): Promise<Partial<ConsumerConfig>> => {
    if (spec.from === 'earliest') return { deliver_policy: DeliverPolicy.All };
    const info = await jsm.streams.info(stream);
    return { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: info.state.last_seq + 1 };
  };

  /** Makes the group's consumers that do not exist yet; updates the ack timeout of those that do. */
  const ensureGroup = async (spec: ConsumerSpec) => {
    let start: Partial<ConsumerConfig> | undefined;
    for (const part of parts) {
      const name = durableOf(spec.group, part);
      try {
        const info = await jsm.consumers.info(stream, name);
        if (info.config.ack_wait !== ns(spec.ackTimeoutMs))
          await jsm.consumers.update(stream, name, { ack_wait: ns(spec.ackTimeoutMs) }).catch(() => {});
      } catch (err) {
        if (apiCode(err) !== NOT_FOUND) throw err;
        start ??= await newGroupStart(spec);
        // a member starting beside this one may have made it meanwhile: it is the same group
        await jsm.consumers.add(stream, consumerConfig(spec, part, start)).catch(async (addErr: unknown) => {
          await jsm.consumers.info(stream, name).catch(() => {
            throw addErr;
          });
        });
      }
    }
  };

  return {
    async append(events) {
      if (events.length === 0) return;
      // one connection keeps the order of its publishes; the acks are awaited together
      const acks = events.map((e) => {
        const h = headers();
        if (e.key !== null) h.set(KEY_HEADER, e.key);
        // the event id dedupes a relay's second hand-over; a re-drive is the same event on purpose
        const dedupe = e.event.plexicaredrive === undefined ? { msgID: e.event.id } : {};
        return js.publish(subjectOf(e.topic, e.key), JSON.stringify(e.event), { ...dedupe, headers: h });
      });
      const results = await Promise.allSettled(acks);
      nc.publish(wakeSubject, [...new Set(events.map((e) => partOf(e.key)))].join(','));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed)
        throw new PlexicaError('PLX_EVENTS_UNAVAILABLE', {
          detail: 'NATS did not store the events',
          cause: failed.reason,
        });
    },

    async consume(spec, onBatch): Promise<Consumption> {
      await ensureGroup(spec);
      const matches = new RegExp(patternsRegex(spec.patterns));
      const pullers = parts.map((part) => ({
        part,
        puller: createPuller(
          nc,
          `$JS.API.CONSUMER.MSG.NEXT.${stream}.${durableOf(spec.group, part)}`,
          KEY_HEADER,
        ),
      }));
      const toDelivery = (m: PulledMessage): DriverDelivery => ({
        position: String(m.seq),
        topic: topicOfSubject(m.subject),
        key: m.key,
        event: JSON.parse(decoder.decode(m.data)) as CloudEvent,
        attempt: m.deliveries,
        ack: async () => m.ack(),
        nack: async (delayMs) => m.nak(delayMs),
      });
      let running = true;
      // partitions to pull in the next round: named by a wake, or not found empty last time
      const due = new Set(parts);
      let lastFullRound = 0;
      let wakeUp: (() => void) | undefined;
      const listen = (named: string[]) => {
        for (const part of named) due.add(part);
        wakeUp?.();
      };
      listeners.add(listen);
      const sleep = () =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            for (const part of parts) due.add(part);
            wakeUp?.();
          }, options.pollIntervalMs);
          wakeUp = () => {
            clearTimeout(timer);
            wakeUp = undefined;
            resolve();
          };
          if (!running || due.size > 0) wakeUp();
        });
      const loop = (async () => {
        while (running) {
          if (due.size === 0) {
            await sleep();
            continue;
          }
          // a member kept busy by some partitions still looks at all of them once an interval
          if (Date.now() - lastFullRound >= options.pollIntervalMs) for (const part of parts) due.add(part);
          if (due.size === parts.length) lastFullRound = Date.now();
          const round = pullers.filter(({ part }) => due.has(part));
          due.clear();
          try {
            const results = await Promise.all(
              round.map(async ({ part, puller }) => ({
                part,
                ...(await puller.pull(part === 'u' ? spec.batchSize : 1)),
              })),
            );
            // a consumer that does not answer may have been deleted (by an operator): made again
            if (results.some((r) => r.timedOut)) await ensureGroup(spec);
            const batch: DriverDelivery[] = [];
            for (const { part, messages } of results) {
              // a partition that gave something may hold more
              if (messages.length > 0) due.add(part);
              for (const m of messages) {
                // not this group's topic: done with at once
                if (!matches.test(topicOfSubject(m.subject))) m.ack();
                else batch.push(toDelivery(m));
              }
            }
            if (batch.length > 0) await onBatch(batch);
          } catch (err) {
            logger.warn({ err, group: spec.group }, 'event consumer round failed; retried');
            for (const part of parts) due.add(part);
            if (running) await new Promise((r) => setTimeout(r, options.pollIntervalMs));
          }
        }
      })();
      return {
        async stop() {
          running = false;
          listeners.delete(listen);
          wakeUp?.();
          await loop;
          for (const { puller } of pullers) puller.close();
        },
      };
    },

    async seek(spec, point) {
      let start: Partial<ConsumerConfig>;
      if ('position' in point) {
        const seq = /^\d{1,15}$/.test(point.position) ? Number(point.position) : 0;
        const found = seq > 0 ? await jsm.streams.getMessage(stream, { seq }).catch(() => null) : null;
        if (!found)
          throw new PlexicaError('PLX_EVENT_POSITION_UNKNOWN', {
            detail: `no retained event at position ${point.position.slice(0, 40)}`,
          });
        start = { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: seq };
      } else {
        start = { deliver_policy: DeliverPolicy.StartTime, opt_start_time: point.time.toISOString() };
      }
      for (const part of parts) {
        const name = durableOf(spec.group, part);
        const config = consumerConfig(spec, part, start);
        // keep the group's own ack timeout when it exists
        const existing = await jsm.consumers.info(stream, name).catch(() => undefined);
        if (existing?.config.ack_wait) config.ack_wait = existing.config.ack_wait;
        for (let attempt = 0; ; attempt++) {
          await jsm.consumers.delete(stream, name).catch((err: unknown) => {
            if (apiCode(err) !== NOT_FOUND) throw err;
          });
          try {
            await jsm.consumers.add(stream, config);
            break;
          } catch (err) {
            // a running member re-made it in between: delete again
            if (attempt >= 5) throw err;
          }
        }
      }
    },

    async deleteGroup(group) {
      for (const part of parts)
        await jsm.consumers.delete(stream, durableOf(group, part)).catch((err: unknown) => {
          if (apiCode(err) !== NOT_FOUND) throw err;
        });
    },

    async lag(group) {
      let total = 0;
      for (const part of parts) {
        const info = await jsm.consumers.info(stream, durableOf(group, part)).catch(() => undefined);
        if (info) total += info.num_pending + info.num_ack_pending;
      }
      return total;
    },

    async ping() {
      return nc.rtt();
    },

    async trim(retention) {
      // the engine drops what is past max_age / max_msgs itself; this keeps the limits current
      const before = await jsm.streams.info(stream);
      const wanted = retentionConfig(retention);
      if (before.config.max_age !== wanted.max_age || before.config.max_msgs !== wanted.max_msgs)
        await jsm.streams.update(stream, { ...before.config, ...wanted });
      const after = await jsm.streams.info(stream);
      return Math.max(0, before.state.messages - after.state.messages);
    },

    async close() {
      await nc.drain().catch(() => nc.close());
    },
  };
}
