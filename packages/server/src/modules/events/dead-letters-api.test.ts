import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_ENGINES } from '../../../test/engines.js';
import { until } from '../../../test/event-bus.js';
import { eventEngineSettings, removeEventEngineState } from '../../../test/event-engine-app.js';
import { createTestApp, type TestApp } from '../../../test/harness.js';
import type { EventDelivery, Subscription } from './service.js';

const GROUP = 'test.crm-projector';

for (const engine of EVENT_ENGINES)
  describe(`dead letters and replay over HTTP (${engine.name})`, () => {
    let t: TestApp;
    let root: string;
    const prefix = `plx-dlq-${randomBytes(4).toString('hex')}`;
    const slug = (name: string) => `${name}-${prefix.slice(-8)}`;
    let a: Awaited<ReturnType<TestApp['createTenant']>>;
    let b: Awaited<ReturnType<TestApp['createTenant']>>;
    let member: string;
    /** Events the group got once it works again (re-drives and replays). */
    const got: EventDelivery[] = [];
    let sub: Subscription | undefined;
    const sent: Record<'won' | 'lost' | 'beta', { id: string }> = {} as never;
    const dead: Record<'won' | 'lost' | 'beta', string> = {} as never;

    const get = (url: string, token: string, tenant?: string) =>
      t.request({ method: 'GET', url, token, ...(tenant && { tenant }) });
    const post = (url: string, token: string, body?: unknown) =>
      t.request({ method: 'POST', url, token, ...(body !== undefined && { body }) });
    const problem = (res: { status: number; body: { code?: string } }) => ({
      status: res.status,
      code: res.body.code,
    });

    beforeAll(async () => {
      t = await createTestApp(engine.database, {
        eventsPollIntervalMs: 50,
        ...eventEngineSettings(engine, prefix),
      });
      root = await t.adminToken();
      a = await t.createTenant(slug('acme'));
      b = await t.createTenant(slug('beta'));
      member = await t.createMember(a.slug, a.adminToken, `member@${a.slug}.test`);
      // a projector that fails on everything: each event is a dead letter at its first failure
      sub = await t.app.services.events.subscribe({
        group: GROUP,
        topics: ['*.crm.*'],
        maxAttempts: 1,
        handler: async () => {
          throw new Error('projection table is missing');
        },
      });
      const publish = async (tenant: typeof a, type: string) => {
        const app = await post('/api/v1/apps', tenant.adminToken, { name: `crm ${type}` });
        const res = await post(`/api/v1/apps/${app.body.id}/events`, tenant.adminToken, {
          category: 'crm',
          type,
          data: { n: 1 },
        });
        expect(res.status).toBe(201);
        return { id: res.body.id as string };
      };
      sent.won = await publish(a, 'deal.won');
      sent.lost = await publish(a, 'deal.lost');
      sent.beta = await publish(b, 'deal.won');
      await until(
        async () => (await t.app.services.events.deadLetters.list({ group: GROUP })).length === 3,
        'three dead letters',
      );
      for (const d of await t.app.services.events.deadLetters.list({ group: GROUP })) {
        const key = (Object.keys(sent) as (keyof typeof sent)[]).find((k) => sent[k].id === d.eventId);
        if (key) dead[key] = d.id;
      }
      // fixed: the group works again, and records what reaches it
      await sub.close();
      sub = await t.app.services.events.subscribe({
        group: GROUP,
        topics: ['*.crm.*'],
        handler: async (d) => void got.push(d),
      });
    });
    afterAll(async () => {
      await sub?.close();
      await t?.close();
      await removeEventEngineState(engine, prefix);
    });

    it("lists the tenant's dead letters newest first, with filters and cursor paging", async () => {
      const list = await get('/api/v1/dead-letters', a.adminToken);
      expect(list.status).toBe(200);
      expect(list.body.data.map((d: { id: string }) => d.id)).toEqual([dead.lost, dead.won]);
      expect(list.body.nextCursor).toBeNull();
      expect(list.body.data[0]).toMatchObject({
        group: GROUP,
        topic: `${a.slug}.crm.deal.lost`,
        eventId: sent.lost.id,
        tenantId: a.id,
        error: 'projection table is missing',
        attempts: 1,
        payload: { id: sent.lost.id, type: 'crm.deal.lost', tenantid: a.id, data: { n: 1 } },
        redrivenAt: null,
      });
      const ids = async (query: string, token = a.adminToken) =>
        (await get(`/api/v1/dead-letters?${query}`, token)).body.data.map((d: { id: string }) => d.id);
      expect(await ids('type=crm.deal.won')).toEqual([dead.won]);
      expect(await ids(`topic=${a.slug}.crm.deal.*`)).toEqual([dead.lost, dead.won]);
      expect(await ids(`topic=${b.slug}.crm.*`)).toEqual([]);
      expect(await ids(`group=${GROUP}`)).toEqual([dead.lost, dead.won]);
      expect(await ids('group=someone.else')).toEqual([]);
      expect(await ids(`from=${new Date(Date.now() + 60_000).toISOString()}`)).toEqual([]);
      expect(await ids(`to=${new Date(Date.now() + 60_000).toISOString()}&redriven=false`)).toEqual([
        dead.lost,
        dead.won,
      ]);

      const first = await get('/api/v1/dead-letters?limit=1', a.adminToken);
      expect(first.body.data.map((d: { id: string }) => d.id)).toEqual([dead.lost]);
      expect(first.body.nextCursor).toEqual(expect.any(String));
      const second = await get(`/api/v1/dead-letters?limit=1&cursor=${first.body.nextCursor}`, a.adminToken);
      expect(second.body.data.map((d: { id: string }) => d.id)).toEqual([dead.won]);
      expect(second.body.nextCursor).toBeNull();

      // a super admin sees every tenant's, or one tenant's with X-Tenant-ID
      expect((await ids(`group=${GROUP}`, root)).sort()).toEqual([dead.won, dead.lost, dead.beta].sort());
      expect(
        (await get('/api/v1/dead-letters', root, b.id)).body.data.map((d: { id: string }) => d.id),
      ).toEqual([dead.beta]);
    });

    it('answers bad filters with a precise problem', async () => {
      const bad = async (query: string) => problem(await get(`/api/v1/dead-letters?${query}`, a.adminToken));
      expect(await bad('cursor=bm90LWEtY3Vyc29y')).toEqual({ status: 400, code: 'PLX_EVENT_CURSOR_INVALID' });
      expect(await bad('topic=acme..crm')).toEqual({ status: 400, code: 'PLX_EVENT_PATTERN_INVALID' });
      expect(await bad('type=NotAType')).toEqual({ status: 400, code: 'PLX_EVENT_TYPE_INVALID' });
      expect(await bad('from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z')).toEqual({
        status: 400,
        code: 'PLX_EVENT_FILTER_NEVER_MATCHES',
      });
      expect(await bad('from=yesterday')).toEqual({ status: 400, code: 'PLX_VALIDATION' });
      expect(await bad('limit=0')).toEqual({ status: 400, code: 'PLX_VALIDATION' });
      expect(problem(await get('/api/v1/dead-letters', member))).toEqual({
        status: 403,
        code: 'PLX_PERMISSION_DENIED',
      });
    });

    it("shows one dead letter; another tenant's, an unknown id and a malformed one are 404", async () => {
      const one = await get(`/api/v1/dead-letters/${dead.won}`, a.adminToken);
      expect(one.status).toBe(200);
      expect(one.body).toMatchObject({ id: dead.won, eventId: sent.won.id, tenantId: a.id });
      for (const [id, token] of [
        [dead.won, b.adminToken],
        [randomUUID(), a.adminToken],
        ['not-a-uuid', a.adminToken],
      ] as const)
        expect(problem(await get(`/api/v1/dead-letters/${id}`, token))).toEqual({
          status: 404,
          code: 'PLX_EVENT_DEAD_LETTER_NOT_FOUND',
        });
    });

    it("tenant B cannot re-drive A's dead letters, alone or in a selection: nothing is re-driven", async () => {
      expect(problem(await post(`/api/v1/dead-letters/${dead.won}/redrive`, b.adminToken))).toEqual({
        status: 404,
        code: 'PLX_EVENT_DEAD_LETTER_NOT_FOUND',
      });
      expect(
        problem(await post('/api/v1/dead-letters/redrive', b.adminToken, { ids: [dead.beta, dead.won] })),
      ).toEqual({ status: 404, code: 'PLX_EVENT_DEAD_LETTER_NOT_FOUND' });
      expect(problem(await post('/api/v1/dead-letters/redrive', a.adminToken, { ids: [] }))).toEqual({
        status: 400,
        code: 'PLX_VALIDATION',
      });
      const all = await t.app.services.events.deadLetters.list({ group: GROUP });
      expect(all.map((d) => d.redrivenAt)).toEqual([null, null, null]);
      expect(problem(await post(`/api/v1/dead-letters/${dead.won}/redrive`, member))).toEqual({
        status: 403,
        code: 'PLX_PERMISSION_DENIED',
      });
    });

    it('re-drives one and a selection to the group, once each, recorded in the tenant audit log', async () => {
      const one = await post(`/api/v1/dead-letters/${dead.won}/redrive`, a.adminToken);
      expect(one.status).toBe(200);
      expect(one.body.redrivenAt).toEqual(expect.any(String));
      await until(() => got.some((d) => d.event.id === sent.won.id), 'the re-driven event');
      expect(got.find((d) => d.event.id === sent.won.id)?.event).not.toHaveProperty('plexicaredrive');
      expect(problem(await post(`/api/v1/dead-letters/${dead.won}/redrive`, a.adminToken))).toEqual({
        status: 409,
        code: 'PLX_EVENT_DEAD_LETTER_REDRIVEN',
      });
      // a selection with one already re-driven re-drives nothing
      expect(
        problem(await post('/api/v1/dead-letters/redrive', a.adminToken, { ids: [dead.lost, dead.won] })),
      ).toEqual({ status: 409, code: 'PLX_EVENT_DEAD_LETTER_REDRIVEN' });
      expect((await get(`/api/v1/dead-letters/${dead.lost}`, a.adminToken)).body.redrivenAt).toBeNull();
      const many = await post('/api/v1/dead-letters/redrive', a.adminToken, { ids: [dead.lost] });
      expect(many.status).toBe(200);
      expect(many.body.data.map((d: { id: string }) => d.id)).toEqual([dead.lost]);
      await until(() => got.some((d) => d.event.id === sent.lost.id), 'the re-driven selection');
      expect(got.filter((d) => d.event.id === sent.beta.id)).toEqual([]);
      expect((await get('/api/v1/dead-letters?redriven=false', a.adminToken)).body.data).toEqual([]);
      const log = await get('/api/v1/audit-events?action=event_dead_letter.redriven', a.adminToken);
      expect(log.body.map((e: { targetId: string }) => e.targetId).sort()).toEqual(
        [dead.won, dead.lost].sort(),
      );
      expect(log.body[0]).toMatchObject({ actorId: a.adminId, targetType: 'event_dead_letter' });
    });

    it('lists the consumer groups and replays one from a position or a time: super admins only', async () => {
      // one process's own group goes when it closes: never listed, never replayed by name
      const mine = await t.app.services.events.subscribe({
        group: 'test.this-process',
        topics: ['*.crm.*'],
        ephemeral: true,
        handler: async () => {},
      });
      const groups = await get('/api/v1/event-groups', root);
      await mine.close();
      expect(groups.status).toBe(200);
      expect(groups.body.map((g: { name: string }) => g.name)).not.toContain('test.this-process');
      expect(groups.body.find((g: { name: string }) => g.name === GROUP)).toMatchObject({
        topics: ['*.crm.*'],
        lag: expect.any(Number),
      });
      const replay = (group: string, body: unknown, token = root) =>
        post(`/api/v1/event-groups/${group}/replay`, token, body);
      const when = new Date(Date.now() - 3_600_000).toISOString();
      expect(problem(await get('/api/v1/event-groups', a.adminToken))).toEqual({
        status: 403,
        code: 'PLX_PERMISSION_DENIED',
      });
      expect(problem(await replay(GROUP, { time: when }, a.adminToken))).toEqual({
        status: 403,
        code: 'PLX_PERMISSION_DENIED',
      });
      expect(problem(await replay('no.such.group', { time: when }))).toEqual({
        status: 404,
        code: 'PLX_EVENT_GROUP_NOT_FOUND',
      });
      expect(problem(await replay(GROUP, { time: new Date(Date.now() + 60_000).toISOString() }))).toEqual({
        status: 400,
        code: 'PLX_EVENT_REPLAY_FUTURE',
      });
      expect(problem(await replay(GROUP, { position: '999999999' }))).toEqual({
        status: 404,
        code: 'PLX_EVENT_POSITION_UNKNOWN',
      });
      for (const body of [{}, { position: '1', time: when }])
        expect(problem(await replay(GROUP, body))).toEqual({
          status: 400,
          code: 'PLX_EVENT_REPLAY_POINT_INVALID',
        });
      expect(problem(await replay('bad%20name', { time: when }))).toEqual({
        status: 400,
        code: 'PLX_VALIDATION',
      });

      // from the first dead letter's position: everything from there comes again (the re-driven
      // copies too, which come later in the log); B's event was never re-driven, so it proves the replay
      const all = [sent.won.id, sent.lost.id, sent.beta.id];
      const cameAgain = (from: number) => () => {
        const ids = new Set(got.slice(from).map((d) => d.event.id));
        return all.every((id) => ids.has(id));
      };
      const first = await t.app.services.events.deadLetters.get(dead.won);
      const before = got.length;
      const moved = await replay(GROUP, { position: first.position });
      expect(moved.status).toBe(200);
      expect(moved.body).toMatchObject({ name: GROUP, topics: ['*.crm.*'] });
      await until(cameAgain(before), 'the replay from a position');
      expect(got.slice(before).every((d) => all.includes(d.event.id))).toBe(true);

      const fromTime = got.length;
      expect((await replay(GROUP, { time: when })).status).toBe(200);
      await until(cameAgain(fromTime), 'the replay from a time');
    });
  });
