import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASES } from '../../../test/engines.js';
import { createTestApp, type TestApp } from '../../../test/harness.js';

async function waitFor<T>(check: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A small labelled fixture: ids say what a query should find first. */
const FIXTURE = [
  {
    type: 'crm:contact',
    id: '42',
    title: 'John Smith',
    body: 'Account manager in New York',
    fields: { email: 'john@acme.test', company: 'Acme', status: 'active', city: 'New York' },
  },
  {
    type: 'crm:contact',
    id: '43',
    title: 'Mary Johnson',
    body: 'Met John at the fair; works in York',
    fields: { email: 'mary@globex.test', company: 'Globex', status: 'lead', city: 'York' },
  },
  {
    type: 'crm:contact',
    id: '44',
    title: 'Élodie Dupré',
    body: 'Pineapple pizza enthusiast from Paris',
    fields: { email: 'elodie@initech.test', company: 'Initech', status: 'active', city: 'Paris' },
  },
  {
    type: 'crm:contact',
    id: '45',
    title: 'Peter Parker',
    body: 'Pizza without pineapple, new york style',
    fields: { status: 'lead', city: 'New York' },
    tags: ['vip'],
  },
  {
    type: 'billing:invoice',
    id: '42',
    title: 'Invoice for Acme',
    body: 'Consulting for John Smith',
    fields: { status: 'paid' },
  },
  {
    type: 'billing:invoice',
    id: '7',
    title: 'Invoice for Globex',
    body: 'Hosting',
    fields: { status: 'open' },
    access: { roles: ['tenant_admin'] },
  },
  { type: 'secret:note', id: '1', title: 'John salary note', body: 'confidential' },
];

for (const kind of DATABASES) {
  describe(`search on ${kind}`, () => {
    let t: TestApp;
    let a: { id: string; slug: string; adminToken: string };
    let b: { id: string; slug: string; adminToken: string };
    let member: string;
    const search = (token: string, body: Record<string, unknown>) =>
      t.request({ method: 'POST', url: '/api/v1/search', token, body });
    const ids = (res: { body: { items: { type: string; id: string }[] } }) =>
      res.body.items.map((i) => `${i.type}/${i.id}`);
    const putType = (token: string, type: string, body: unknown) =>
      t.request({ method: 'PUT', url: `/api/v1/search/types/${type}`, token, body });
    const bulk = (token: string, docs: unknown[]) =>
      t.app.server.inject({
        method: 'POST',
        url: '/api/v1/search/index/bulk',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson' },
        payload: docs.map((d) => JSON.stringify(d)).join('\n'),
      });

    beforeAll(async () => {
      t = await createTestApp(kind, {
        searchMaxDocumentBytes: 4 * 1024 * 1024,
        searchCountLimit: 10,
        jobsPollIntervalSeconds: 1,
      });
      t.app.services.search.registerType({ type: 'test:code', searchable: { code: 'A' } });
      await t.app.start();
      const suffix = randomBytes(3).toString('hex');
      a = await t.createTenant(`sa-${suffix}`);
      b = await t.createTenant(`sb-${suffix}`);
      member = await t.createMember(a.slug, a.adminToken, `member@${a.slug}.test`);
      for (const token of [a.adminToken, b.adminToken]) {
        expect(
          (
            await putType(token, 'crm:contact', {
              searchable: { email: 'B', company: 'C' },
              attributes: ['status', 'city'],
            })
          ).status,
        ).toBe(200);
        expect((await putType(token, 'billing:invoice', { attributes: ['status'] })).status).toBe(200);
        expect((await putType(token, 'secret:note', { permission: 'jobs:job:create' })).status).toBe(200);
      }
      const res = await bulk(a.adminToken, FIXTURE);
      expect(res.statusCode, res.body).toBe(200);
      expect(JSON.parse(res.body)).toEqual({ indexed: FIXTURE.length });
      const other = await bulk(b.adminToken, [
        { type: 'crm:contact', id: '1', title: 'Johnny Bravo', fields: { status: 'active' } },
      ]);
      expect(other.statusCode, other.body).toBe(200);
    });
    afterAll(async () => {
      await t?.close();
    });

    it('ranks title matches above body matches, and keeps ids per type (seed edge 7)', async () => {
      const res = await search(a.adminToken, { q: 'john', prefix: false });
      expect(res.status).toBe(200);
      expect(ids(res)[0]).toBe('crm:contact/42');
      expect(ids(res)).toContain('billing:invoice/42');
      expect(ids(res)).toContain('crm:contact/43');
      expect(res.body.items.find((i: { id: string }) => i.id === '43').snippet).toContain(
        '<mark>John</mark> at the fair',
      );
      expect(res.body.total).toBe(ids(res).length);
      expect(res.body.totalExact).toBe(true);
    });

    it('matches prefixes as you type, accents folded, phrases, exclusion and OR', async () => {
      expect(ids(await search(a.adminToken, { q: 'jo' }))).toContain('crm:contact/42');
      expect(ids(await search(a.adminToken, { q: 'elodie dupre' }))).toEqual(['crm:contact/44']);
      const phrase = ids(await search(a.adminToken, { q: '"new york"', types: ['crm:contact'] }));
      expect(phrase.sort()).toEqual(['crm:contact/42', 'crm:contact/45']);
      expect(ids(await search(a.adminToken, { q: 'pizza -pineapple', prefix: false }))).toEqual([]);
      expect(ids(await search(a.adminToken, { q: 'pizza -paris', prefix: false }))).toEqual([
        'crm:contact/45',
      ]);
      const or = ids(await search(a.adminToken, { q: 'paris OR hosting', prefix: false }));
      expect(or.sort()).toEqual(['billing:invoice/7', 'crm:contact/44']);
      expect(ids(await search(a.adminToken, { q: 'vip', prefix: false }))).toEqual(['crm:contact/45']);
      expect(ids(await search(a.adminToken, { q: 'globex', types: ['crm:contact'], prefix: false }))).toEqual(
        ['crm:contact/43'],
      );
    });

    it('filters by type and attribute and counts facets', async () => {
      const res = await search(a.adminToken, {
        q: 'new york',
        types: ['crm:contact'],
        filters: { status: 'lead' },
        facets: ['status', 'city'],
        prefix: false,
      });
      expect(ids(res)).toEqual(['crm:contact/45']);
      expect(res.body.facets.status).toEqual([{ value: 'lead', count: 1 }]);
      const all = await search(a.adminToken, {
        q: 'york',
        types: ['crm:contact'],
        facets: ['city'],
        prefix: false,
      });
      expect(all.body.facets.city).toEqual([
        { value: 'New York', count: 2 },
        { value: 'York', count: 1 },
      ]);
      const invoices = await search(a.adminToken, {
        q: 'invoice',
        types: ['billing:invoice'],
        filters: { status: ['paid', 'void'] },
      });
      expect(ids(invoices)).toEqual(['billing:invoice/42']);
    });

    it('groups results by type (seed §9)', async () => {
      const res = await search(a.adminToken, { q: 'john', groupBy: 'type', prefix: false });
      expect(res.status).toBe(200);
      expect(res.body.groups.map((g: { type: string }) => g.type)).toEqual([
        'crm:contact',
        'secret:note',
        'billing:invoice',
      ]);
    });

    it('tolerates typos below every exact match, and says what was meant', async () => {
      const res = await search(a.adminToken, { q: 'jhon', prefix: false });
      expect(ids(res)[0]).toBe('crm:contact/42');
      expect(res.body.items[0].match).toBe('fuzzy');
      expect(res.body.didYouMean).toBe('john');
      await t.request({
        method: 'POST',
        url: '/api/v1/search/index',
        token: a.adminToken,
        body: { type: 'crm:contact', id: 'jhon', title: 'Jhon Doe' },
      });
      const both = await search(a.adminToken, { q: 'jhon', prefix: false });
      expect(ids(both)[0]).toBe('crm:contact/jhon');
      expect(both.body.items[0].match).toBe('exact');
      expect(both.body.items.slice(1).every((i: { match: string }) => i.match === 'fuzzy')).toBe(true);
      expect(both.body.didYouMean).toBeUndefined();
      await t.request({ method: 'DELETE', url: '/api/v1/search/jhon?type=crm:contact', token: a.adminToken });
    });

    it('shows only what the caller may see: access lists, type permissions', async () => {
      const mine = ids(await search(member, { q: 'invoice', prefix: false }));
      expect(mine).toEqual(['billing:invoice/42']);
      expect(ids(await search(a.adminToken, { q: 'invoice', prefix: false })).sort()).toEqual([
        'billing:invoice/42',
        'billing:invoice/7',
      ]);
      const facets = await search(member, {
        q: 'invoice',
        types: ['billing:invoice'],
        facets: ['status'],
        prefix: false,
      });
      expect(facets.body.facets.status).toEqual([{ value: 'paid', count: 1 }]);
      expect(facets.body.total).toBe(1);
      expect(ids(await search(member, { q: 'salary', prefix: false }))).toEqual([]);
      const denied = await search(member, { q: 'salary', types: ['secret:note'] });
      expect(denied.status).toBe(403);
      expect(denied.body.code).toBe('PLX_PERMISSION_DENIED');
      const hidden = await search(member, { q: 'hostng', prefix: false });
      expect(hidden.body.items).toEqual([]);
      expect(hidden.body.didYouMean).toBeUndefined();
      expect(ids(await search(a.adminToken, { q: 'salary', prefix: false }))).toEqual(['secret:note/1']);
    });

    it('isolates tenants: documents, counts, facets and suggestions', async () => {
      const res = await search(b.adminToken, { q: 'john', facets: ['status'], types: ['crm:contact'] });
      expect(ids(res)).toEqual(['crm:contact/1']);
      expect(res.body.total).toBe(1);
      expect(res.body.facets.status).toEqual([{ value: 'active', count: 1 }]);
      const typo = await search(b.adminToken, { q: 'pinapple', prefix: false });
      expect(typo.body.items).toEqual([]);
      expect(typo.body.didYouMean).toBeUndefined();
      const suggest = await t.request({
        method: 'POST',
        url: '/api/v1/search/suggest',
        token: b.adminToken,
        body: { q: 'jo' },
      });
      expect(suggest.body.suggestions).toEqual(['Johnny Bravo']);
      const cursorOfA = (await search(a.adminToken, { q: 'john', limit: 1 })).body.nextCursor;
      const stolen = await search(b.adminToken, { q: 'john', limit: 1, cursor: cursorOfA });
      expect(stolen.status).toBe(400);
      expect(stolen.body.code).toBe('PLX_SEARCH_CURSOR_INVALID');
    });

    it('pages with a stable cursor and bounds the total', async () => {
      const docs = Array.from({ length: 15 }, (_, i) => ({
        type: 'billing:invoice',
        id: `p${String(i).padStart(2, '0')}`,
        title: `Paging invoice ${i}`,
        body: 'zebra '.repeat(i + 1),
      }));
      expect((await bulk(a.adminToken, docs)).statusCode).toBe(200);
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 5; page++) {
        const res = await search(a.adminToken, {
          q: 'zebra',
          limit: 4,
          prefix: false,
          ...(cursor && { cursor }),
        });
        expect(res.status).toBe(200);
        if (page === 0) expect(res.body).toMatchObject({ total: 10, totalExact: false });
        seen.push(...ids(res));
        cursor = res.body.nextCursor ?? undefined;
        if (!cursor) break;
      }
      expect(seen.length).toBe(15);
      expect(new Set(seen).size).toBe(15);
      expect(seen[0]).toBe('billing:invoice/p14');
      const other = await search(a.adminToken, {
        q: 'paging',
        limit: 4,
        cursor: (await search(a.adminToken, { q: 'zebra', limit: 4 })).body.nextCursor,
      });
      expect(other.body.code).toBe('PLX_SEARCH_CURSOR_INVALID');
      expect(
        (
          await t.request({
            method: 'POST',
            url: '/api/v1/search/delete',
            token: a.adminToken,
            body: { q: 'zebra' },
          })
        ).body,
      ).toEqual({ deleted: 15 });
      expect((await search(a.adminToken, { q: 'zebra' })).body.items).toEqual([]);
    });

    it('upserts by (type, id) and never lets an older updatedAt win', async () => {
      const index = (title: string, updatedAt: string) =>
        t.request({
          method: 'POST',
          url: '/api/v1/search/index',
          token: a.adminToken,
          body: { type: 'test:code', id: 'u1', title, updatedAt, fields: { code: 'XK-99' } },
        });
      expect((await index('Newer walrus', '2026-06-02T00:00:00Z')).status).toBe(200);
      expect((await index('Older walrus', '2026-06-01T00:00:00Z')).status).toBe(200);
      const res = await search(a.adminToken, { q: 'walrus' });
      expect(res.body.items.map((i: { title: string }) => i.title)).toEqual(['Newer walrus']);
      expect(ids(await search(a.adminToken, { q: 'xk' }))).toEqual(['test:code/u1']);
      expect(
        (await t.request({ method: 'DELETE', url: '/api/v1/search/u1?type=test:code', token: a.adminToken }))
          .status,
      ).toBe(204);
      expect((await search(a.adminToken, { q: 'walrus' })).body.items).toEqual([]);
    });

    it('fails loudly when the database refuses a document, and indexes nothing', async () => {
      const words = Array.from({ length: 160_000 }, () => randomBytes(5).toString('hex')).join(' ');
      const res = await t.request({
        method: 'POST',
        url: '/api/v1/search/index',
        token: a.adminToken,
        body: { type: 'crm:contact', id: 'huge', title: 'Huge', body: words },
      });
      expect(res.status).toBe(422);
      expect(res.body.code).toBe('PLX_SEARCH_INDEX_FAILED');
      expect(res.body.detail).toContain('crm:contact/huge');
      expect(res.body.detail).toContain('tsvector');
      expect((await search(a.adminToken, { q: 'huge', prefix: false })).body.items).toEqual([]);
    });

    it('reindexes as a job with progress, searches working meanwhile, and can be cancelled', async () => {
      const docs = Array.from({ length: 1200 }, (_, i) => ({
        type: 'crm:contact',
        id: `r${i}`,
        title: `Reindex person ${i}`,
        fields: { company: 'Umbrella' },
      }));
      expect((await bulk(a.adminToken, docs)).statusCode).toBe(200);
      expect(
        (
          await putType(a.adminToken, 'crm:contact', {
            searchable: { email: 'B', company: 'A' },
            attributes: ['status', 'city'],
          })
        ).status,
      ).toBe(200);
      const started = await t.request({
        method: 'POST',
        url: '/api/v1/search/reindex',
        token: a.adminToken,
        body: { type: 'crm:contact' },
      });
      expect(started.status).toBe(202);
      const again = await t.request({
        method: 'POST',
        url: '/api/v1/search/reindex',
        token: a.adminToken,
        body: { type: 'crm:contact' },
      });
      expect(again.body.code).toBe('PLX_SEARCH_REINDEX_RUNNING');
      const during = await search(a.adminToken, { q: 'john', types: ['crm:contact'], prefix: false });
      expect(ids(during)[0]).toBe('crm:contact/42');
      const job = await waitFor(async () => {
        const res = await t.request({
          method: 'GET',
          url: `/api/v1/jobs/${started.body.id}`,
          token: a.adminToken,
        });
        return res.body.status === 'completed' ? res.body : undefined;
      });
      expect(job.progress).toBe(100);
      expect(job.result).toEqual({ documents: 1204, generation: 2 });
      // company now weighs A (was C): one match of it scores 0.38 instead of 0.11
      const after = await search(a.adminToken, { q: 'umbrella', limit: 1, prefix: false });
      expect(after.body.items[0].score).toBeGreaterThan(0.3);
      expect(ids(await search(a.adminToken, { q: 'john', types: ['crm:contact'], prefix: false }))[0]).toBe(
        'crm:contact/42',
      );

      const second = await t.request({
        method: 'POST',
        url: '/api/v1/search/reindex',
        token: a.adminToken,
        body: { type: 'crm:contact' },
      });
      expect(second.status).toBe(202);
      const cancelled = await t.request({
        method: 'DELETE',
        url: `/api/v1/jobs/${second.body.id}`,
        token: a.adminToken,
      });
      expect(cancelled.status).toBe(200);
      await waitFor(async () => {
        const types = await t.request({ method: 'GET', url: '/api/v1/search/types', token: a.adminToken });
        const contact = types.body.find((x: { type: string }) => x.type === 'crm:contact');
        const res = await t.request({
          method: 'GET',
          url: `/api/v1/jobs/${second.body.id}`,
          token: a.adminToken,
        });
        return ['cancelled', 'failed'].includes(res.body.status) && contact.generation === 2
          ? true
          : undefined;
      });
      const third = await t.request({
        method: 'POST',
        url: '/api/v1/search/reindex',
        token: a.adminToken,
        body: { type: 'crm:contact' },
      });
      expect(third.status).toBe(202);
      expect(ids(await search(a.adminToken, { q: 'john', types: ['crm:contact'], prefix: false }))[0]).toBe(
        'crm:contact/42',
      );
    });

    it('refuses bad input with a precise 400 and indexes nothing', async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ q: '' }, 'PLX_SEARCH_QUERY_INVALID'],
        [{ q: '   ' }, 'PLX_SEARCH_QUERY_INVALID'],
        [{ q: 'x'.repeat(10_240) }, 'PLX_SEARCH_QUERY_INVALID'],
        [{ q: '- - OR' }, 'PLX_SEARCH_QUERY_INVALID'],
        [{ q: '-john' }, 'PLX_SEARCH_QUERY_INVALID'],
        [{ q: '"new york' }, 'PLX_SEARCH_QUERY_INVALID'],
        ...['&', '|', '!', '(', ')', ':', '*'].map((c): [Record<string, unknown>, string] => [
          { q: `john ${c} smith` },
          'PLX_SEARCH_QUERY_INVALID',
        ]),
        [{ q: "john'; drop table x; --" }, 'PLX_SEARCH_QUERY_INVALID'],
        [{ q: 'john /* x */' }, 'PLX_SEARCH_QUERY_INVALID'],
        [{ q: 'john', types: ['nope:type'] }, 'PLX_SEARCH_TYPE_UNKNOWN'],
        [{ q: 'john', types: ['crm:contact'], filters: { email: 'x' } }, 'PLX_SEARCH_FILTER_INVALID'],
        [{ q: 'john', types: ['billing:invoice'], facets: ['city'] }, 'PLX_SEARCH_FILTER_INVALID'],
        [{ q: 'john', cursor: 'bm90LWEtY3Vyc29y' }, 'PLX_SEARCH_CURSOR_INVALID'],
        [{ q: 'john', limit: 0 }, 'PLX_VALIDATION'],
        [{ q: 'john', limit: 10_000 }, 'PLX_VALIDATION'],
      ];
      for (const [body, code] of cases) {
        const res = await search(a.adminToken, body);
        expect({ body, status: res.status, code: res.body.code }).toEqual({ body, status: 400, code });
      }
      const docs: [Record<string, unknown>, string][] = [
        [
          { type: 'crm:contact', id: 'big', title: 'Big', body: 'a '.repeat(2.5 * 1024 * 1024) },
          'PLX_SEARCH_DOCUMENT_TOO_LARGE',
        ],
        [{ type: 'crm:contact', id: 'empty', title: '' }, 'PLX_VALIDATION'],
        [{ type: 'crm:contact', id: 'blank', title: '   ' }, 'PLX_VALIDATION'],
        [
          { type: 'crm:contact', id: 'undeclared', title: 'X', fields: { salary: 1 } },
          'PLX_SEARCH_FIELD_UNDECLARED',
        ],
        [{ type: 'nope:type', id: 'x', title: 'X' }, 'PLX_SEARCH_TYPE_UNKNOWN'],
      ];
      for (const [body, code] of docs) {
        const res = await t.request({
          method: 'POST',
          url: '/api/v1/search/index',
          token: a.adminToken,
          body,
        });
        expect({ id: body.id, status: res.status, code: res.body.code }).toEqual({
          id: body.id,
          status: 400,
          code,
        });
      }
      const badLine = await bulk(a.adminToken, [{ type: 'crm:contact', id: 'ok1', title: 'Bulk ok' }]);
      expect(badLine.statusCode).toBe(200);
      const broken = await t.app.server.inject({
        method: 'POST',
        url: '/api/v1/search/index/bulk',
        headers: { authorization: `Bearer ${a.adminToken}`, 'content-type': 'application/x-ndjson' },
        payload: `${JSON.stringify({ type: 'crm:contact', id: 'ok2', title: 'Bulk two' })}\n{not json\n`,
      });
      expect(JSON.parse(broken.body).code).toBe('PLX_SEARCH_BULK_INVALID');
      expect(JSON.parse(broken.body).detail).toContain('line 2');
      expect(ids(await search(a.adminToken, { q: 'bulk', prefix: false }))).toEqual(['crm:contact/ok1']);
      expect((await putType(a.adminToken, 'test:code', {})).body.code).toBe('PLX_SEARCH_TYPE_RESERVED');
      expect(
        (
          await t.request({
            method: 'POST',
            url: '/api/v1/search/index',
            token: member,
            body: { type: 'crm:contact', id: 'm', title: 'M' },
          })
        ).status,
      ).toBe(403);
    });

    it('drops a tenant’s documents with its schema', async () => {
      const token = await t.adminToken();
      expect((await t.request({ method: 'DELETE', url: `/api/v1/tenants/${b.id}`, token })).status).toBe(200);
      await t.app.services.tenants.purgeExpired(new Date(Date.now() + 400 * 86_400_000));
      const schema = `tenant_${b.slug.replaceAll('-', '_')}`;
      const left = await t.app.database.db
        .selectFrom('information_schema.tables')
        .select('table_name')
        .where('table_schema', '=', schema)
        .execute();
      expect(left).toEqual([]);
    });
  });
}
