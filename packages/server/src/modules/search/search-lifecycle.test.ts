import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DATABASES } from '../../../test/engines.js';
import { useSearchApp, waitFor } from '../../../test/search-fixture.js';

for (const kind of DATABASES) {
  describe(`search lifecycle and bad input on ${kind}`, () => {
    const s = useSearchApp(kind);
    const { search, ids, putType, bulk } = s;

    it('fails loudly when the database refuses a document, and indexes nothing', async () => {
      const words = Array.from({ length: 160_000 }, () => randomBytes(5).toString('hex')).join(' ');
      const res = await s.t.request({
        method: 'POST',
        url: '/api/v1/search/index',
        token: s.a.adminToken,
        body: { type: 'crm:contact', id: 'huge', title: 'Huge', body: words },
      });
      expect(res.status).toBe(422);
      expect(res.body.code).toBe('PLX_SEARCH_INDEX_FAILED');
      expect(res.body.detail).toContain('crm:contact/huge');
      expect(res.body.detail).toContain('tsvector');
      expect((await search(s.a.adminToken, { q: 'huge', prefix: false })).body.items).toEqual([]);
    });

    it('reindexes as a job with progress, searches working meanwhile, and can be cancelled', async () => {
      const docs = Array.from({ length: 1200 }, (_, i) => ({
        type: 'crm:contact',
        id: `r${i}`,
        title: `Reindex person ${i}`,
        fields: { company: 'Umbrella' },
      }));
      expect((await bulk(s.a.adminToken, docs)).statusCode).toBe(200);
      expect(
        (
          await putType(s.a.adminToken, 'crm:contact', {
            searchable: { email: 'B', company: 'A' },
            attributes: ['status', 'city'],
          })
        ).status,
      ).toBe(200);
      const started = await s.t.request({
        method: 'POST',
        url: '/api/v1/search/reindex',
        token: s.a.adminToken,
        body: { type: 'crm:contact' },
      });
      expect(started.status).toBe(202);
      const again = await s.t.request({
        method: 'POST',
        url: '/api/v1/search/reindex',
        token: s.a.adminToken,
        body: { type: 'crm:contact' },
      });
      expect(again.body.code).toBe('PLX_SEARCH_REINDEX_RUNNING');
      const during = await search(s.a.adminToken, { q: 'john', types: ['crm:contact'], prefix: false });
      expect(ids(during)[0]).toBe('crm:contact/42');
      const job = await waitFor(async () => {
        const res = await s.t.request({
          method: 'GET',
          url: `/api/v1/jobs/${started.body.id}`,
          token: s.a.adminToken,
        });
        return res.body.status === 'completed' ? res.body : undefined;
      });
      expect(job.progress).toBe(100);
      expect(job.result).toEqual({ documents: 1204, generation: 2 });
      // company now weighs A (was C): one match of it scores 0.38 instead of 0.11
      const after = await search(s.a.adminToken, { q: 'umbrella', limit: 1, prefix: false });
      expect(after.body.items[0].score).toBeGreaterThan(0.3);
      expect(ids(await search(s.a.adminToken, { q: 'john', types: ['crm:contact'], prefix: false }))[0]).toBe(
        'crm:contact/42',
      );

      const second = await s.t.request({
        method: 'POST',
        url: '/api/v1/search/reindex',
        token: s.a.adminToken,
        body: { type: 'crm:contact' },
      });
      expect(second.status).toBe(202);
      const cancelled = await s.t.request({
        method: 'DELETE',
        url: `/api/v1/jobs/${second.body.id}`,
        token: s.a.adminToken,
      });
      expect(cancelled.status).toBe(200);
      await waitFor(async () => {
        const types = await s.t.request({
          method: 'GET',
          url: '/api/v1/search/types',
          token: s.a.adminToken,
        });
        const contact = types.body.find((x: { type: string }) => x.type === 'crm:contact');
        const res = await s.t.request({
          method: 'GET',
          url: `/api/v1/jobs/${second.body.id}`,
          token: s.a.adminToken,
        });
        return ['cancelled', 'failed'].includes(res.body.status) && contact.generation === 2
          ? true
          : undefined;
      });
      const third = await s.t.request({
        method: 'POST',
        url: '/api/v1/search/reindex',
        token: s.a.adminToken,
        body: { type: 'crm:contact' },
      });
      expect(third.status).toBe(202);
      expect(ids(await search(s.a.adminToken, { q: 'john', types: ['crm:contact'], prefix: false }))[0]).toBe(
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
        const res = await search(s.a.adminToken, body);
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
        const res = await s.t.request({
          method: 'POST',
          url: '/api/v1/search/index',
          token: s.a.adminToken,
          body,
        });
        expect({ id: body.id, status: res.status, code: res.body.code }).toEqual({
          id: body.id,
          status: 400,
          code,
        });
      }
      const badLine = await bulk(s.a.adminToken, [{ type: 'crm:contact', id: 'ok1', title: 'Bulk ok' }]);
      expect(badLine.statusCode).toBe(200);
      const broken = await s.t.app.server.inject({
        method: 'POST',
        url: '/api/v1/search/index/bulk',
        headers: { authorization: `Bearer ${s.a.adminToken}`, 'content-type': 'application/x-ndjson' },
        payload: `${JSON.stringify({ type: 'crm:contact', id: 'ok2', title: 'Bulk two' })}\n{not json\n`,
      });
      expect(JSON.parse(broken.body).code).toBe('PLX_SEARCH_BULK_INVALID');
      expect(JSON.parse(broken.body).detail).toContain('line 2');
      expect(ids(await search(s.a.adminToken, { q: 'bulk', prefix: false }))).toEqual(['crm:contact/ok1']);
      expect((await putType(s.a.adminToken, 'test:code', {})).body.code).toBe('PLX_SEARCH_TYPE_RESERVED');
      // a member may read no type of a tenant whose only type needs a permission: nothing, not an error
      const lone = await s.t.createTenant(`sc-${randomBytes(3).toString('hex')}`);
      await putType(lone.adminToken, 'secret:note', { permission: 'jobs:job:create' });
      const loneMember = await s.t.createMember(lone.slug, lone.adminToken, `m@${lone.slug}.test`);
      const suggest = await s.t.request({
        method: 'POST',
        url: '/api/v1/search/suggest',
        token: loneMember,
        body: { q: 'jo' },
      });
      expect({ status: suggest.status, body: suggest.body }).toEqual({
        status: 200,
        body: { suggestions: [] },
      });
      expect((await search(loneMember, { q: 'jo' })).body).toMatchObject({ items: [], total: 0 });
      expect(
        (
          await s.t.request({
            method: 'POST',
            url: '/api/v1/search/index',
            token: s.member,
            body: { type: 'crm:contact', id: 'm', title: 'M' },
          })
        ).status,
      ).toBe(403);
    });

    it('drops a tenant’s documents with its schema', async () => {
      const token = await s.t.adminToken();
      expect((await s.t.request({ method: 'DELETE', url: `/api/v1/tenants/${s.b.id}`, token })).status).toBe(
        200,
      );
      await s.t.app.services.tenants.purgeExpired(new Date(Date.now() + 400 * 86_400_000));
      const schema = `tenant_${s.b.slug.replaceAll('-', '_')}`;
      const left = await s.t.app.database.db
        .selectFrom('information_schema.tables')
        .select('table_name')
        .where('table_schema', '=', schema)
        .execute();
      expect(left).toEqual([]);
    });
  });
}
