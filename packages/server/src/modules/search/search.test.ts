import { describe, expect, it } from 'vitest';
import { DATABASES } from '../../../test/engines.js';
import { useSearchApp } from '../../../test/search-fixture.js';

for (const kind of DATABASES) {
  describe(`search on ${kind}`, () => {
    const s = useSearchApp(kind);
    const { search, ids, bulk } = s;

    it('ranks title matches above body matches, and keeps ids per type (seed edge 7)', async () => {
      const res = await search(s.a.adminToken, { q: 'john', prefix: false });
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
      expect(ids(await search(s.a.adminToken, { q: 'jo' }))).toContain('crm:contact/42');
      expect(ids(await search(s.a.adminToken, { q: 'elodie dupre' }))).toEqual(['crm:contact/44']);
      const phrase = ids(await search(s.a.adminToken, { q: '"new york"', types: ['crm:contact'] }));
      expect(phrase.sort()).toEqual(['crm:contact/42', 'crm:contact/45']);
      expect(ids(await search(s.a.adminToken, { q: 'pizza -pineapple', prefix: false }))).toEqual([]);
      expect(ids(await search(s.a.adminToken, { q: 'pizza -paris', prefix: false }))).toEqual([
        'crm:contact/45',
      ]);
      const or = ids(await search(s.a.adminToken, { q: 'paris OR hosting', prefix: false }));
      expect(or.sort()).toEqual(['billing:invoice/7', 'crm:contact/44']);
      expect(ids(await search(s.a.adminToken, { q: 'vip', prefix: false }))).toEqual(['crm:contact/45']);
      expect(
        ids(await search(s.a.adminToken, { q: 'globex', types: ['crm:contact'], prefix: false })),
      ).toEqual(['crm:contact/43']);
    });

    it('filters by type and attribute and counts facets', async () => {
      const res = await search(s.a.adminToken, {
        q: 'new york',
        types: ['crm:contact'],
        filters: { status: 'lead' },
        facets: ['status', 'city'],
        prefix: false,
      });
      expect(ids(res)).toEqual(['crm:contact/45']);
      expect(res.body.facets.status).toEqual([{ value: 'lead', count: 1 }]);
      const all = await search(s.a.adminToken, {
        q: 'york',
        types: ['crm:contact'],
        facets: ['city'],
        prefix: false,
      });
      expect(all.body.facets.city).toEqual([
        { value: 'New York', count: 2 },
        { value: 'York', count: 1 },
      ]);
      const invoices = await search(s.a.adminToken, {
        q: 'invoice',
        types: ['billing:invoice'],
        filters: { status: ['paid', 'void'] },
      });
      expect(ids(invoices)).toEqual(['billing:invoice/42']);
    });

    it('groups results by type (seed §9)', async () => {
      const res = await search(s.a.adminToken, { q: 'john', groupBy: 'type', prefix: false });
      expect(res.status).toBe(200);
      expect(res.body.groups.map((g: { type: string }) => g.type)).toEqual([
        'crm:contact',
        'secret:note',
        'billing:invoice',
      ]);
    });

    it('tolerates typos below every exact match, and says what was meant', async () => {
      const res = await search(s.a.adminToken, { q: 'jhon', prefix: false });
      expect(ids(res)[0]).toBe('crm:contact/42');
      expect(res.body.items[0].match).toBe('fuzzy');
      expect(res.body.didYouMean).toBe('john');
      await s.t.request({
        method: 'POST',
        url: '/api/v1/search/index',
        token: s.a.adminToken,
        body: { type: 'crm:contact', id: 'jhon', title: 'Jhon Doe' },
      });
      const both = await search(s.a.adminToken, { q: 'jhon', prefix: false });
      expect(ids(both)[0]).toBe('crm:contact/jhon');
      expect(both.body.items[0].match).toBe('exact');
      expect(both.body.items.slice(1).every((i: { match: string }) => i.match === 'fuzzy')).toBe(true);
      expect(both.body.didYouMean).toBeUndefined();
      await s.t.request({
        method: 'DELETE',
        url: '/api/v1/search/jhon?type=crm:contact',
        token: s.a.adminToken,
      });
    });

    it('shows only what the caller may see: access lists, type permissions', async () => {
      const mine = ids(await search(s.member, { q: 'invoice', prefix: false }));
      expect(mine).toEqual(['billing:invoice/42']);
      expect(ids(await search(s.a.adminToken, { q: 'invoice', prefix: false })).sort()).toEqual([
        'billing:invoice/42',
        'billing:invoice/7',
      ]);
      const facets = await search(s.member, {
        q: 'invoice',
        types: ['billing:invoice'],
        facets: ['status'],
        prefix: false,
      });
      expect(facets.body.facets.status).toEqual([{ value: 'paid', count: 1 }]);
      expect(facets.body.total).toBe(1);
      expect(ids(await search(s.member, { q: 'salary', prefix: false }))).toEqual([]);
      const denied = await search(s.member, { q: 'salary', types: ['secret:note'] });
      expect(denied.status).toBe(403);
      expect(denied.body.code).toBe('PLX_PERMISSION_DENIED');
      const hidden = await search(s.member, { q: 'hostng', prefix: false });
      expect(hidden.body.items).toEqual([]);
      expect(hidden.body.didYouMean).toBeUndefined();
      expect(ids(await search(s.a.adminToken, { q: 'salary', prefix: false }))).toEqual(['secret:note/1']);
    });

    it('isolates tenants: documents, counts, facets and suggestions', async () => {
      const res = await search(s.b.adminToken, { q: 'john', facets: ['status'], types: ['crm:contact'] });
      expect(ids(res)).toEqual(['crm:contact/1']);
      expect(res.body.total).toBe(1);
      expect(res.body.facets.status).toEqual([{ value: 'active', count: 1 }]);
      const typo = await search(s.b.adminToken, { q: 'pinapple', prefix: false });
      expect(typo.body.items).toEqual([]);
      expect(typo.body.didYouMean).toBeUndefined();
      const suggest = await s.t.request({
        method: 'POST',
        url: '/api/v1/search/suggest',
        token: s.b.adminToken,
        body: { q: 'jo' },
      });
      expect(suggest.body.suggestions).toEqual(['Johnny Bravo']);
      const cursorOfA = (await search(s.a.adminToken, { q: 'john', limit: 1 })).body.nextCursor;
      const stolen = await search(s.b.adminToken, { q: 'john', limit: 1, cursor: cursorOfA });
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
      expect((await bulk(s.a.adminToken, docs)).statusCode).toBe(200);
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 5; page++) {
        const res = await search(s.a.adminToken, {
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
      const other = await search(s.a.adminToken, {
        q: 'paging',
        limit: 4,
        cursor: (await search(s.a.adminToken, { q: 'zebra', limit: 4 })).body.nextCursor,
      });
      expect(other.body.code).toBe('PLX_SEARCH_CURSOR_INVALID');
      expect(
        (
          await s.t.request({
            method: 'POST',
            url: '/api/v1/search/delete',
            token: s.a.adminToken,
            body: { q: 'zebra' },
          })
        ).body,
      ).toEqual({ deleted: 15 });
      expect((await search(s.a.adminToken, { q: 'zebra' })).body.items).toEqual([]);
    });

    it('upserts by (type, id) and never lets an older updatedAt win', async () => {
      const index = (title: string, updatedAt: string) =>
        s.t.request({
          method: 'POST',
          url: '/api/v1/search/index',
          token: s.a.adminToken,
          body: { type: 'test:code', id: 'u1', title, updatedAt, fields: { code: 'XK-99' } },
        });
      expect((await index('Newer walrus', '2026-06-02T00:00:00Z')).status).toBe(200);
      expect((await index('Older walrus', '2026-06-01T00:00:00Z')).status).toBe(200);
      const res = await search(s.a.adminToken, { q: 'walrus' });
      expect(res.body.items.map((i: { title: string }) => i.title)).toEqual(['Newer walrus']);
      expect(ids(await search(s.a.adminToken, { q: 'xk' }))).toEqual(['test:code/u1']);
      expect(
        (
          await s.t.request({
            method: 'DELETE',
            url: '/api/v1/search/u1?type=test:code',
            token: s.a.adminToken,
          })
        ).status,
      ).toBe(204);
      expect((await search(s.a.adminToken, { q: 'walrus' })).body.items).toEqual([]);
    });
  });
}
