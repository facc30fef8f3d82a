import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_ENGINES } from '../../../test/engines.js';
import { type BusFixture, createBusFixture, until } from '../../../test/event-bus.js';
import { type RequestContext, systemContext, type TenantRef } from '../../context.js';
import { inTransaction } from '../../infra/database/transaction.js';
import { PlexicaError } from '../../infra/errors.js';
import type { CloudEvent } from './envelope.js';
import type { EventBus, EventDelivery, Subscription } from './service.js';

const tenant = (slug: string): TenantRef => ({
  id: randomUUID(),
  slug,
  schema: `tenant_${slug}`,
  settings: {},
});
const ACME = tenant('acme');
const BETA = tenant('beta');
const ctxOf = (t: TenantRef | null): RequestContext => systemContext('0af7651916cd43dd8448eb211c80319c', t);

async function rejection(promise: Promise<unknown>): Promise<PlexicaError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof PlexicaError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}

/** A subscription that records what it gets. */
async function collect(bus: EventBus, group: string, topics: string[], options: { from?: 'earliest' } = {}) {
  const got: EventDelivery[] = [];
  const sub = await bus.subscribe({
    group,
    topics,
    ...options,
    handler: async (d) => {
      got.push(d);
    },
  });
  return { got, sub };
}

for (const engine of EVENT_ENGINES)
  describe(`event bus contract: ${engine.name}`, () => {
    let f: BusFixture;
    let bus: EventBus;
    const subs: Subscription[] = [];
    const g = () => `g-${randomUUID().slice(0, 8)}`;
    beforeAll(async () => {
      f = await createBusFixture(engine);
      bus = f.bus;
    });
    afterAll(async () => {
      for (const s of subs) await s.close();
      await f?.close();
    });

    it('delivers a CloudEvents 1.0 envelope on {tenant_slug}.{type} with tenant and trace context', async () => {
      const c = await collect(bus, g(), ['acme.crm.*']);
      subs.push(c.sub);
      const sent = await bus.publish(ctxOf(ACME), 'crm.deal.created', { amount: 5 }, { subject: 'deal-1' });
      await until(() => c.got.length === 1, 'the event');
      const d = c.got[0];
      expect(d?.topic).toBe('acme.crm.deal.created');
      expect(d?.event).toEqual({
        specversion: '1.0',
        id: sent.id,
        source: '/plexica/core',
        type: 'crm.deal.created',
        time: sent.time,
        subject: 'deal-1',
        datacontenttype: 'application/json',
        data: { amount: 5 },
        tenantid: ACME.id,
        traceparent: sent.traceparent,
      });
      expect(sent.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
      expect(d?.attempt).toBe(1);
    });

    it('routes by wildcard: * is one segment inside a pattern, one or more at its end', async () => {
      const crm = await collect(bus, g(), ['acme.crm.*']);
      const deals = await collect(bus, g(), ['acme.crm.deal.*']);
      const created = await collect(bus, g(), ['*.crm.deal.created']);
      const global = await collect(bus, g(), ['global.*']);
      subs.push(crm.sub, deals.sub, created.sub, global.sub);
      await bus.publish(ctxOf(ACME), 'crm.deal.created', {});
      await bus.publish(ctxOf(ACME), 'crm.contact.created', {});
      await bus.publish(ctxOf(BETA), 'crm.deal.created', {});
      await bus.publish(ctxOf(null), 'platform.tenant.created', {});
      await until(
        () => crm.got.length === 2 && created.got.length === 2 && global.got.length === 1,
        'routing',
      );
      await bus.publish(ctxOf(ACME), 'crm.deal.won', {});
      await until(() => deals.got.length === 2 && crm.got.length === 3, 'the last event');
      const topics = (c: { got: EventDelivery[] }) => c.got.map((d) => d.topic).sort();
      expect(topics(crm)).toEqual(['acme.crm.contact.created', 'acme.crm.deal.created', 'acme.crm.deal.won']);
      expect(topics(deals)).toEqual(['acme.crm.deal.created', 'acme.crm.deal.won']);
      expect(topics(created)).toEqual(['acme.crm.deal.created', 'beta.crm.deal.created']);
      expect(topics(global)).toEqual(['global.platform.tenant.created']);
    });

    it('gives every group every event and shares a group among its members', async () => {
      const shared = g();
      const seen: string[][] = [[], [], []];
      const member = (i: number, group: string) =>
        bus.subscribe({
          group,
          topics: ['acme.share.*'],
          batchSize: 2,
          handler: async (d) => {
            seen[i]?.push(d.event.id);
            await new Promise((r) => setTimeout(r, 5));
          },
        });
      subs.push(await member(0, shared), await member(1, shared), await member(2, g()));
      const ids: string[] = [];
      for (let i = 0; i < 40; i++) ids.push((await bus.publish(ctxOf(ACME), 'share.item.made', { i })).id);
      await until(() => seen[0]!.length + seen[1]!.length === 40 && seen[2]!.length === 40, 'all events');
      expect([...seen[0]!, ...seen[1]!].sort()).toEqual([...ids].sort());
      expect(seen[0]!.length).toBeGreaterThan(0);
      expect(seen[1]!.length).toBeGreaterThan(0);
      expect([...seen[2]!].sort()).toEqual([...ids].sort());
    });

    it('keeps the order per key within a group, across members and through a retry', async () => {
      const group = g();
      const byKey = new Map<string, number[]>();
      let failedOnce = false;
      const handler = async (d: EventDelivery) => {
        const { key, n } = d.event.data as { key: string; n: number };
        // one event fails its first attempt: the key's later events must wait for it
        if (key === 'k1' && n === 3 && !failedOnce) {
          failedOnce = true;
          throw new Error('transient');
        }
        await new Promise((r) => setTimeout(r, Math.random() * 4));
        byKey.set(key, [...(byKey.get(key) ?? []), n]);
      };
      for (let m = 0; m < 2; m++)
        subs.push(await bus.subscribe({ group, topics: ['acme.order.*'], handler }));
      const keys = ['k1', 'k2', 'k3', 'k4'];
      for (let n = 0; n < 10; n++)
        for (const key of keys) await bus.publish(ctxOf(ACME), 'order.step.done', { key, n }, { key });
      await until(() => keys.every((k) => (byKey.get(k)?.length ?? 0) === 10), 'every key');
      for (const key of keys) expect(byKey.get(key)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(failedOnce).toBe(true);
    });

    it('redelivers to another member after the ack timeout when one hangs', async () => {
      const group = g();
      let release: (() => void) | undefined;
      const got: EventDelivery[] = [];
      subs.push(
        await bus.subscribe({
          group,
          topics: ['acme.hang.*'],
          handler: () => new Promise<void>((resolve) => (release = resolve)),
        }),
      );
      await bus.publish(ctxOf(ACME), 'hang.job.started', {});
      await until(() => release !== undefined, 'the hanging member');
      subs.push(
        await bus.subscribe({ group, topics: ['acme.hang.*'], handler: async (d) => void got.push(d) }),
      );
      await until(() => got.length === 1, 'the redelivery');
      expect(got[0]?.attempt).toBe(2);
      release?.();
    });

    it('dead-letters after max attempts with topic, position, error and payload, and re-drives to that group only', async () => {
      const failing = g();
      let attempts = 0;
      let healed = false;
      const redriven: EventDelivery[] = [];
      subs.push(
        await bus.subscribe({
          group: failing,
          topics: ['acme.dlq.*'],
          maxAttempts: 2,
          handler: async (d) => {
            if (!healed) {
              attempts++;
              throw new Error('handler refused it');
            }
            redriven.push(d);
          },
        }),
      );
      const other = await collect(bus, g(), ['acme.dlq.*']);
      subs.push(other.sub);
      const sent = await bus.publish(ctxOf(ACME), 'dlq.thing.broke', { x: 1 }, { key: 'thing-1' });
      await until(
        async () => (await bus.deadLetters.list({ group: failing })).length === 1,
        'the dead letter',
      );
      const [dead] = await bus.deadLetters.list({ group: failing });
      expect(attempts).toBe(2);
      expect(dead).toMatchObject({
        group: failing,
        topic: 'acme.dlq.thing.broke',
        eventId: sent.id,
        tenantId: ACME.id,
        error: 'handler refused it',
        attempts: 2,
        payload: { id: sent.id, type: 'dlq.thing.broke', data: { x: 1 } },
        redrivenAt: null,
      });
      expect(dead?.position).toMatch(/\S/);
      expect((await bus.deadLetters.list({ tenantId: BETA.id })).length).toBe(0);
      healed = true;
      const after = await bus.deadLetters.redrive(dead!.id);
      expect(after.redrivenAt).toBeInstanceOf(Date);
      await until(() => redriven.length === 1, 'the re-driven event');
      expect(redriven[0]?.event.id).toBe(sent.id);
      expect(redriven[0]?.event).not.toHaveProperty('plexicaredrive');
      // the healthy group got it once, and not again with the re-drive
      await new Promise((r) => setTimeout(r, 300));
      expect(other.got.length).toBe(1);
      const missing = await rejection(bus.deadLetters.redrive(randomUUID()));
      expect(missing.code).toBe('PLX_EVENT_DEAD_LETTER_NOT_FOUND');
      const foreign = await rejection(bus.deadLetters.redrive(dead!.id, { tenantId: BETA.id }));
      expect(foreign.code).toBe('PLX_EVENT_DEAD_LETTER_NOT_FOUND');
    });

    it('replays a group from a position and from a point in time; never from the future', async () => {
      const group = g();
      const topics = ['acme.replay.*'];
      const c = await collect(bus, group, topics);
      const sent: CloudEvent[] = [];
      for (let i = 0; i < 5; i++) {
        sent.push(await bus.publish(ctxOf(ACME), 'replay.item.made', { i }));
        if (i === 2) await new Promise((r) => setTimeout(r, 30));
      }
      await until(() => c.got.length === 5, 'the first pass');
      const third = c.got.find((d) => d.event.id === sent[2]?.id);
      await c.sub.close();
      await bus.replay({ group, topics }, { position: third!.position });
      const again = await collect(bus, group, topics);
      subs.push(again.sub);
      await until(() => again.got.length === 3, 'the replay from a position');
      expect(again.got.map((d) => (d.event.data as { i: number }).i)).toEqual([2, 3, 4]);
      await again.sub.close();
      await bus.replay({ group, topics }, { time: new Date(sent[3]!.time) });
      const fromTime = await collect(bus, group, topics);
      subs.push(fromTime.sub);
      await until(() => fromTime.got.length === 2, 'the replay from a time');
      expect(fromTime.got.map((d) => (d.event.data as { i: number }).i)).toEqual([3, 4]);
      const future = await rejection(bus.replay({ group, topics }, { time: new Date(Date.now() + 60_000) }));
      expect(future.code).toBe('PLX_EVENT_REPLAY_FUTURE');
      const unknown = await rejection(bus.replay({ group, topics }, { position: '999999999' }));
      expect(unknown.code).toBe('PLX_EVENT_POSITION_UNKNOWN');
    });

    it('delivers what is published in a transaction only if it commits (outbox)', async () => {
      const c = await collect(bus, g(), ['acme.outbox.*']);
      subs.push(c.sub);
      const rolledBack = await inTransaction(f.database.db, async (tx) => {
        const event = await bus.publishIn(tx, ctxOf(ACME), 'outbox.thing.made', { n: 'kept' });
        return event;
      });
      await rejection(
        inTransaction(f.database.db, async (tx) => {
          await bus.publishIn(tx, ctxOf(ACME), 'outbox.thing.made', { n: 'dropped' });
          throw new PlexicaError('PLX_VALIDATION', { detail: 'roll back' });
        }),
      );
      await bus.publish(ctxOf(ACME), 'outbox.thing.after', {});
      await inTransaction(f.database.db, (tx) =>
        bus.publishManyIn(
          tx,
          ctxOf(ACME),
          [1, 2, 3].map((n) => ({ type: 'outbox.thing.many', data: { n }, options: { key: 'k' } })),
        ),
      );
      await until(() => c.got.length === 5, 'the committed events');
      await new Promise((r) => setTimeout(r, 200));
      expect(c.got.map((d) => d.event.data)).toEqual([{ n: 'kept' }, {}, { n: 1 }, { n: 2 }, { n: 3 }]);
      expect(c.got[0]?.event.id).toBe(rolledBack.id);
      // handed over after the commit: nothing is left in the outbox for the sweep
      const left = await sql<{ n: number }>`select count(*)::int as n from core.event_outbox`.execute(
        f.database.db,
      );
      expect(left.rows[0]?.n).toBe(0);
    });

    // the event log joins the caller's transaction: it has no outbox
    it.skipIf(engine.driver === 'postgres')(
      'relays what a crash left in the outbox between the commit and the hand-over',
      async () => {
        const c = await collect(bus, g(), ['acme.crashed.*']);
        subs.push(c.sub);
        const event: CloudEvent = {
          specversion: '1.0',
          id: randomUUID(),
          source: '/plexica/core',
          type: 'crashed.thing.made',
          time: new Date().toISOString(),
          datacontenttype: 'application/json',
          data: {},
          tenantid: ACME.id,
          traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        };
        // a row as a transaction commits it, whose after-commit step never ran
        await sql`insert into core.event_outbox (topic, key, envelope, created_at)
        values ('acme.crashed.thing.made', null, ${JSON.stringify(event)}, now() - interval '1 minute')`.execute(
          f.database.db,
        );
        expect(await bus.relayOutbox()).toBe(1);
        await until(() => c.got.length === 1, 'the relayed event');
        expect(c.got[0]?.event.id).toBe(event.id);
        expect(await bus.relayOutbox()).toBe(0);
      },
    );

    it('gives a consumer that was down what was published meanwhile, and counts it as lag', async () => {
      const group = g();
      const first = await collect(bus, group, ['acme.down.*']);
      await bus.publish(ctxOf(ACME), 'down.item.made', { n: 0 });
      await until(() => first.got.length === 1, 'the first event');
      await first.sub.close();
      for (let n = 1; n <= 4; n++) await bus.publish(ctxOf(ACME), 'down.item.made', { n });
      await until(async () => (await bus.lag(group)) === 4, 'a lag of 4');
      const back = await collect(bus, group, ['acme.down.*']);
      subs.push(back.sub);
      await until(() => back.got.length === 4, 'the missed events');
      expect(back.got.map((d) => (d.event.data as { n: number }).n)).toEqual([1, 2, 3, 4]);
      await until(async () => (await bus.lag(group)) === 0, 'no lag');
    });

    it('forgets an ephemeral group (one of a single process) when it closes', async () => {
      const group = g();
      const got: EventDelivery[] = [];
      const sub = await bus.subscribe({
        group,
        topics: ['acme.mine.*'],
        ephemeral: true,
        handler: async (d) => void got.push(d),
      });
      await bus.publish(ctxOf(ACME), 'mine.item.made', { n: 0 });
      await until(() => got.length === 1, 'the event');
      await sub.close();
      for (let n = 1; n <= 2; n++) await bus.publish(ctxOf(ACME), 'mine.item.made', { n });
      // a kept group would now be 2 behind
      await new Promise((r) => setTimeout(r, 200));
      expect(await bus.lag(group)).toBe(0);
      // the same name later is a new group: it starts with what comes next
      const again = await collect(bus, group, ['acme.mine.*']);
      subs.push(again.sub);
      await bus.publish(ctxOf(ACME), 'mine.item.made', { n: 3 });
      await until(() => again.got.length === 1, 'the next event');
      await new Promise((r) => setTimeout(r, 200));
      expect(again.got.map((d) => (d.event.data as { n: number }).n)).toEqual([3]);
    });

    it('refuses bad input precisely and publishes nothing', async () => {
      const c = await collect(bus, g(), ['acme.*']);
      subs.push(c.sub);
      for (const type of ['nodots', 'Crm.Deal', 'crm..deal', 'crm.deal.', `a.${'b'.repeat(200)}`])
        expect((await rejection(bus.publish(ctxOf(ACME), type, {}))).code).toBe('PLX_EVENT_TYPE_INVALID');
      const big = await rejection(bus.publish(ctxOf(ACME), 'bad.data.big', { s: 'x'.repeat(64 * 1024) }));
      expect(big.code).toBe('PLX_EVENT_TOO_LARGE');
      expect((await rejection(collect(bus, g(), ['acme.crm.**']))).code).toBe('PLX_EVENT_PATTERN_INVALID');
      expect((await rejection(collect(bus, g(), []))).code).toBe('PLX_EVENT_PATTERN_INVALID');
      const handler = async () => {};
      for (const topics of [['beta.crm.*'], ['*.crm.*'], ['acme.crm.*', 'global.*']]) {
        const err = await rejection(bus.subscribeTenant(ctxOf(ACME), { group: g(), topics, handler }));
        expect(err.code).toBe('PLX_EVENT_TOPIC_FORBIDDEN');
      }
      subs.push(await bus.subscribeTenant(ctxOf(ACME), { group: g(), topics: ['acme.crm.*'], handler }));
      await bus.publish(ctxOf(ACME), 'bad.data.fine', {});
      await until(() => c.got.length === 1, 'the one good event');
      await new Promise((r) => setTimeout(r, 200));
      expect(c.got.map((d) => d.event.type)).toEqual(['bad.data.fine']);
    });
  });
