import type { Logger } from 'pino';
import type { RequestContext } from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import type { Transaction } from '../../infra/database/transaction.js';
import { PlexicaError } from '../../infra/errors.js';
import { type ConsumerGroupStore, createConsumerGroupStore } from './consumer-groups.js';
import { createDeadLetterStore, type DeadLetterStore } from './dead-letters.js';
import type { ConsumerSpec, DriverDelivery, EventDriver, SeekPoint } from './drivers/event-driver.js';
import {
  buildEnvelope,
  type CloudEvent,
  type EnvelopeInput,
  type OutgoingEvent,
  parseTopicPattern,
  topicOf,
} from './envelope.js';
import { createOutbox } from './outbox.js';

export interface PublishOptions {
  /** Events with the same key reach each group in the order published. */
  key?: string;
  /** CloudEvents `subject`: what the event is about (an entity id). */
  subject?: string;
  /** CloudEvents `source`; `/plexica/core` unless an app publishes. */
  source?: string;
  time?: Date;
  id?: string;
}

/** One event handed to a subscription's handler. */
export interface EventDelivery<T = unknown> {
  event: CloudEvent<T>;
  topic: string;
  /** The event's place in the engine's log: give it to `replay`. */
  position: string;
  /** 1 on the first delivery to this group. */
  attempt: number;
}

export interface Subscription {
  group: string;
  /** Stops this member; the group's other members (and its position) carry on. */
  close(): Promise<void>;
}

export interface SubscribeOptions {
  /** Every group receives every matching event at least once; members of a group share them. */
  group: string;
  /** Topic patterns: `acme.crm.*`, `*.core.user.created`, `global.*` (see `parseTopicPattern`). */
  topics: string[];
  /** Throw to have the event delivered again (with backoff), up to `maxAttempts`, then dead-lettered. */
  handler(delivery: EventDelivery): Promise<void>;
  maxAttempts?: number;
  ackTimeoutMs?: number;
  batchSize?: number;
  /** Where a new group starts (an existing group keeps its position). Default `latest`. */
  from?: 'latest' | 'earliest';
  /**
   * The group belongs to this process only (every process sees every event, e.g. cache
   * invalidation): it is deleted when its last member here closes, so groups of processes
   * that have stopped do not pile up in the engine.
   */
  ephemeral?: boolean;
}

/**
 * The durable event bus modules publish to and subscribe on.
 *
 * @example
 * await bus.publish(ctx, 'crm.deal.won', { dealId }, { key: dealId, subject: dealId });
 * await inTransaction(db, async (tx) => {
 *   await tx.db.insertInto('core.things').values(thing).execute();
 *   await bus.publishIn(tx, ctx, 'things.thing.created', { id: thing.id }); // only if this commits
 * });
 * const sub = await bus.subscribe({ group: 'search.indexer', topics: ['*.crm.*'], handler: async (d) => index(d.event) });
 */
export interface EventBus {
  /** Publishes on `{tenant_slug}.{type}` (the context's tenant) or `global.{type}`. */
  publish(ctx: RequestContext, type: string, data: unknown, options?: PublishOptions): Promise<CloudEvent>;
  /** As `publish`, delivered only if `tx` commits (the transactional outbox). */
  publishIn(
    tx: Transaction,
    ctx: RequestContext,
    type: string,
    data: unknown,
    options?: PublishOptions,
  ): Promise<CloudEvent>;
  /** Several events in `tx` with one write (one multi-row INSERT), in order. */
  publishManyIn(
    tx: Transaction,
    ctx: RequestContext,
    events: { type: string; data: unknown; options?: PublishOptions }[],
  ): Promise<CloudEvent[]>;
  subscribe(options: SubscribeOptions): Promise<Subscription>;
  /** As `subscribe`, refusing topics outside the context's tenant (`PLX_EVENT_TOPIC_FORBIDDEN`). */
  subscribeTenant(ctx: RequestContext, options: SubscribeOptions): Promise<Subscription>;
  /** Moves `group` back (or forward) to a position or a point in time; its next deliveries start there. */
  replay(group: { group: string; topics: string[] }, point: SeekPoint): Promise<void>;
  /** Events the group has still to work through. */
  lag(group: string): Promise<number>;
  /** The groups subscribed in this process (for the lag gauge). */
  groups(): string[];
  deadLetters: DeadLetterStore;
  /** Every group that subscribed, with its topics (what a replay by name needs). */
  consumerGroups: ConsumerGroupStore;
  /** Relays outbox rows a crash left behind; a scheduler loop. */
  relayOutbox(): Promise<number>;
  /** Applies retention; a scheduler loop. */
  trim(): Promise<number>;
  ping(): Promise<number>;
  close(): Promise<void>;
}

export interface EventBusOptions {
  db: Executor;
  driver: EventDriver;
  logger: Pick<Logger, 'warn' | 'error'>;
  /** Largest `data`, serialised, in bytes (64 KB, seed 002). */
  maxDataBytes: number;
  maxAttempts: number;
  ackTimeoutMs: number;
  retention: { maxAgeMs: number; maxEvents: number };
  onPublished?(event: CloudEvent): void;
  /** Wait before attempt `attempt + 1` after a handler failed; 1 s doubling up to a minute by default. */
  retryDelayMs?(attempt: number): number;
}

const defaultRetryDelayMs = (attempt: number) => Math.min(60_000, 1000 * 2 ** (attempt - 1));

export function createEventBus(options: EventBusOptions): EventBus {
  const { db, driver, logger } = options;
  const retryDelayMs = options.retryDelayMs ?? defaultRetryDelayMs;
  const deadLetters = createDeadLetterStore(db, driver);
  const outbox = createOutbox(db, driver, logger);
  const consumerGroups = createConsumerGroupStore(db);
  const subscriptions = new Set<Subscription>();
  const groupNames = new Map<string, number>();

  const prepare = (ctx: RequestContext, type: string, data: unknown, opts: PublishOptions): OutgoingEvent => {
    const input: EnvelopeInput = { type, data, ...opts };
    const event = buildEnvelope(ctx, input);
    const bytes = Buffer.byteLength(JSON.stringify(event.data));
    if (bytes > options.maxDataBytes)
      throw new PlexicaError('PLX_EVENT_TOO_LARGE', {
        detail: `event data is ${bytes} bytes; at most ${options.maxDataBytes}`,
      });
    return { topic: topicOf(ctx.tenant?.slug ?? null, type), key: opts.key ?? null, event };
  };

  /** @returns whether the delivery is done with (acked), or comes again later */
  const handle = async (
    spec: ConsumerSpec,
    sub: SubscribeOptions,
    maxAttempts: number,
    d: DriverDelivery,
  ): Promise<'done' | 'retry'> => {
    // a re-driven dead letter is meant for one group only
    if (d.event.plexicaredrive !== undefined && d.event.plexicaredrive !== spec.group) {
      await d.ack();
      return 'done';
    }
    if (d.attempt > maxAttempts) {
      // its earlier attempts ended without an ack (the member died or hung past the timeout)
      await deadLetters.add(
        spec.group,
        d,
        `no ack within ${spec.ackTimeoutMs} ms in ${maxAttempts} attempts`,
      );
      await d.ack();
      return 'done';
    }
    try {
      const { plexicaredrive: _, ...event } = d.event;
      await sub.handler({ event, topic: d.topic, position: d.position, attempt: d.attempt });
    } catch (err) {
      if (d.attempt < maxAttempts) {
        await d.nack(retryDelayMs(d.attempt));
        return 'retry';
      }
      await deadLetters.add(spec.group, d, err instanceof Error ? err.message : String(err));
    }
    await d.ack();
    return 'done';
  };

  const subscribe = async (sub: SubscribeOptions): Promise<Subscription> => {
    for (const pattern of sub.topics) parseTopicPattern(pattern);
    if (sub.topics.length === 0) throw new PlexicaError('PLX_EVENT_PATTERN_INVALID', { detail: 'no topics' });
    const maxAttempts = sub.maxAttempts ?? options.maxAttempts;
    const spec: ConsumerSpec = {
      group: sub.group,
      patterns: sub.topics,
      ackTimeoutMs: sub.ackTimeoutMs ?? options.ackTimeoutMs,
      batchSize: sub.batchSize ?? 100,
      from: sub.from ?? 'latest',
      ephemeral: sub.ephemeral ?? false,
    };
    // an ephemeral group is one process's own and goes when it closes: nothing to replay by name
    if (!spec.ephemeral) await consumerGroups.record(sub.group, sub.topics);
    const consumption = await driver.consume(spec, async (batch) => {
      // per key in order (a failure holds the key's later events back), keys side by side
      const byKey = new Map<string, DriverDelivery[]>();
      for (const [i, d] of batch.entries()) {
        const key = d.key ?? `\u0000${i}`;
        byKey.set(key, [...(byKey.get(key) ?? []), d]);
      }
      await Promise.all(
        [...byKey.values()].map(async (list) => {
          for (const [i, d] of list.entries()) {
            const outcome = await handle(spec, sub, maxAttempts, d).catch((err: unknown) => {
              // the engine could not record the outcome: the ack timeout brings the event back
              logger.error(
                { err, group: spec.group, position: d.position },
                'event delivery bookkeeping failed',
              );
              return 'retry' as const;
            });
            // the rest of this key waits for the one that comes again
            if (outcome === 'retry') {
              for (const rest of list.slice(i + 1)) await rest.nack(retryDelayMs(d.attempt));
              return;
            }
          }
        }),
      );
    });
    groupNames.set(sub.group, (groupNames.get(sub.group) ?? 0) + 1);
    const subscription: Subscription = {
      group: sub.group,
      async close() {
        if (!subscriptions.delete(subscription)) return;
        await consumption.stop();
        const left = (groupNames.get(sub.group) ?? 1) - 1;
        if (left > 0) {
          groupNames.set(sub.group, left);
          return;
        }
        groupNames.delete(sub.group);
        if (spec.ephemeral)
          await driver.deleteGroup(spec.group).catch((err: unknown) => {
            logger.warn({ err, group: spec.group }, 'could not delete a closed ephemeral event group');
          });
      },
    };
    subscriptions.add(subscription);
    return subscription;
  };

  const publishManyIn: EventBus['publishManyIn'] = async (tx, ctx, events) => {
    const outgoing = events.map((e) => prepare(ctx, e.type, e.data, e.options ?? {}));
    if (outgoing.length === 0) return [];
    if (driver.appendIn) await driver.appendIn(tx, outgoing);
    else await outbox.write(tx, outgoing);
    tx.afterCommit(async () => {
      for (const o of outgoing) options.onPublished?.(o.event);
    });
    return outgoing.map((o) => o.event);
  };

  return {
    async publish(ctx, type, data, opts = {}) {
      const outgoing = prepare(ctx, type, data, opts);
      await driver.append([outgoing]);
      options.onPublished?.(outgoing.event);
      return outgoing.event;
    },
    async publishIn(tx, ctx, type, data, opts = {}) {
      const [event] = await publishManyIn(tx, ctx, [{ type, data, options: opts }]);
      return event as CloudEvent;
    },
    publishManyIn,
    subscribe,
    async subscribeTenant(ctx, sub) {
      const slug = ctx.tenant?.slug;
      for (const pattern of sub.topics) {
        if (!slug || parseTopicPattern(pattern)[0] !== slug)
          throw new PlexicaError('PLX_EVENT_TOPIC_FORBIDDEN', {
            detail: `topic pattern "${pattern.slice(0, 100)}" is outside this tenant's topics (${slug ?? 'none'}.*)`,
          });
      }
      return subscribe(sub);
    },
    async replay(group, point) {
      if ('time' in point && point.time.getTime() > Date.now())
        throw new PlexicaError('PLX_EVENT_REPLAY_FUTURE', { detail: 'a replay cannot start in the future' });
      for (const pattern of group.topics) parseTopicPattern(pattern);
      await driver.seek(
        {
          group: group.group,
          patterns: group.topics,
          ackTimeoutMs: options.ackTimeoutMs,
          batchSize: 1,
          from: 'latest',
          ephemeral: false,
        },
        point,
      );
    },
    lag: (group) => driver.lag(group),
    groups: () => [...groupNames.keys()],
    deadLetters,
    consumerGroups,
    relayOutbox: () => outbox.relayStale(),
    trim: () => driver.trim(options.retention),
    ping: () => driver.ping(),
    async close() {
      await Promise.all([...subscriptions].map((s) => s.close()));
      await driver.close();
    },
  };
}
