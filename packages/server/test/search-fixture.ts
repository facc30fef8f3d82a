import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect } from 'vitest';
import type { DatabaseKind } from './engines.js';
import { createTestApp, type TestApp } from './harness.js';

/** Polls until `check` returns a value (not undefined/false) or the time is up. */
export async function waitFor<T>(
  check: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A small labelled fixture: ids say what a query should find first. */
export const FIXTURE = [
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

/**
 * An app with tenants A (admin, member, the fixture) and B (one contact), three API types
 * and one code type; its hooks are registered in the calling describe block.
 */
export function useSearchApp(kind: DatabaseKind) {
  const s = {
    t: undefined as unknown as TestApp,
    a: undefined as unknown as { id: string; slug: string; adminToken: string },
    b: undefined as unknown as { id: string; slug: string; adminToken: string },
    member: '',
    search: (token: string, body: Record<string, unknown>) =>
      s.t.request({ method: 'POST', url: '/api/v1/search', token, body }),
    ids: (res: { body: { items: { type: string; id: string }[] } }) =>
      res.body.items.map((i) => `${i.type}/${i.id}`),
    putType: (token: string, type: string, body: unknown) =>
      s.t.request({ method: 'PUT', url: `/api/v1/search/types/${type}`, token, body }),
    bulk: (token: string, docs: unknown[]) =>
      s.t.app.server.inject({
        method: 'POST',
        url: '/api/v1/search/index/bulk',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson' },
        payload: docs.map((d) => JSON.stringify(d)).join('\n'),
      }),
  };
  const { putType, bulk } = s;
  beforeAll(async () => {
    s.t = await createTestApp(kind, {
      searchMaxDocumentBytes: 4 * 1024 * 1024,
      searchCountLimit: 10,
      jobsPollIntervalSeconds: 1,
    });
    s.t.app.services.search.registerType({ type: 'test:code', searchable: { code: 'A' } });
    await s.t.app.start();
    const suffix = randomBytes(3).toString('hex');
    s.a = await s.t.createTenant(`sa-${suffix}`);
    s.b = await s.t.createTenant(`sb-${suffix}`);
    s.member = await s.t.createMember(s.a.slug, s.a.adminToken, `member@${s.a.slug}.test`);
    for (const token of [s.a.adminToken, s.b.adminToken]) {
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
    const res = await bulk(s.a.adminToken, FIXTURE);
    expect(res.statusCode, res.body).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ indexed: FIXTURE.length });
    const other = await bulk(s.b.adminToken, [
      { type: 'crm:contact', id: '1', title: 'Johnny Bravo', fields: { status: 'active' } },
    ]);
    expect(other.statusCode, other.body).toBe(200);
  });
  afterAll(async () => {
    await s.t?.close();
  });
  return s;
}
