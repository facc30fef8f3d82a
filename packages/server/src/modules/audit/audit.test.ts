import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, DATABASES, type TestApp } from '../../../test/harness.js';
import { UUID } from '../../infra/uuid.js';

interface Event {
  id: string;
  action: string;
  actorType: string;
  actorId: string | null;
  credential: string | null;
  ip: string | null;
  targetType: string;
  targetId: string | null;
  traceId: string | null;
  requestId: string | null;
  data: Record<string, unknown>;
}

for (const kind of DATABASES) {
  describe(`audit log (${kind})`, () => {
    let t: TestApp;
    let tenant: { id: string; slug: string; adminToken: string; adminId: string };
    let member: string;
    let key: { id: string; secret: string };

    /** The tenant's log as its admin reads it, newest first (the last 100). */
    const log = async (action?: string): Promise<Event[]> => {
      const res = await t.request({
        method: 'GET',
        url: `/api/v1/audit-events?limit=100${action ? `&action=${action}` : ''}`,
        token: tenant.adminToken,
      });
      expect(res.status).toBe(200);
      return res.body;
    };
    const upload = (token: string, path: string, body: string, headers: Record<string, string> = {}) =>
      t.app.server.inject({
        method: 'POST',
        url: `/api/v1/storage/upload?path=${encodeURIComponent(path)}`,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain', ...headers },
        payload: body,
      });

    beforeAll(async () => {
      t = await createTestApp(kind);
      t.app.services.jobs.define({ type: 'test.noop', handler: async () => null });
      tenant = await t.createTenant('audited');
      member = await t.createMember('audited', tenant.adminToken, 'member@audited.test');
      const created = await t.request({
        method: 'POST',
        url: '/api/v1/api-keys',
        token: tenant.adminToken,
        body: { name: 'files', permissions: ['storage:file:read', 'storage:file:write'] },
      });
      expect(created.status).toBe(201);
      key = { id: created.body.key.id, secret: created.body.secret };
    });
    afterAll(async () => {
      await t?.close();
    });

    it('records uploads, copies, moves and deletes with actor, credential, IP and request id', async () => {
      const headers = { 'x-trace-id': 'client-chosen-trace' };
      expect((await upload(tenant.adminToken, 'log/a.txt', 'hello', headers)).statusCode).toBe(201);
      const [uploaded] = await log('storage.file.uploaded');
      expect(uploaded).toMatchObject({
        actorType: 'user',
        actorId: tenant.adminId,
        credential: 'access_token',
        ip: '127.0.0.1',
        targetType: 'file',
        targetId: 'log/a.txt',
        traceId: 'client-chosen-trace',
        data: { size: 5, contentType: 'text/plain', replaced: false },
      });
      // the client chose the trace id, so the server keeps an id of its own beside it
      expect(uploaded!.requestId).toMatch(UUID);

      const post = (action: 'copy' | 'move', body: object) =>
        t.request({ method: 'POST', url: `/api/v1/storage/${action}`, token: tenant.adminToken, body });
      expect((await post('copy', { from: 'log/a.txt', to: 'log/b.txt' })).status).toBe(200);
      expect((await post('move', { from: 'log/b.txt', to: 'log/a.txt' })).status).toBe(200);
      const removed = await t.app.server.inject({
        method: 'DELETE',
        url: '/api/v1/storage/log/a.txt',
        headers: { authorization: `Bearer ${tenant.adminToken}` },
      });
      expect(removed.statusCode).toBe(204);

      const [deleted, moved, copied] = await log();
      expect(copied).toMatchObject({
        action: 'storage.file.copied',
        targetId: 'log/b.txt',
        data: { from: 'log/a.txt', size: 5, replaced: false },
      });
      expect(moved).toMatchObject({
        action: 'storage.file.moved',
        targetId: 'log/a.txt',
        data: { from: 'log/b.txt', replaced: true },
      });
      expect(deleted).toMatchObject({
        action: 'storage.file.deleted',
        targetId: 'log/a.txt',
        data: { size: 5 },
      });
      // no X-Trace-ID: the trace id is the server's own, and so is the request id
      expect(deleted!.traceId).toMatch(UUID);
      expect(deleted!.requestId).toBe(deleted!.traceId);
    });

    it('records signed-URL issuance, and the upload through it as the URL', async () => {
      const signed = await t.request({
        method: 'GET',
        url: '/api/v1/storage/signed-url/drop/in.txt?method=PUT&expiresIn=60&contentType=text/plain',
        token: key.secret,
      });
      expect(signed.status).toBe(200);
      const [issued] = await log('storage.signed_url.issued');
      expect(issued).toMatchObject({
        actorType: 'api_key',
        actorId: key.id,
        credential: 'api_key',
        targetId: 'drop/in.txt',
        data: {
          method: 'PUT',
          contentType: 'text/plain',
          overwrite: false,
          expiresAt: signed.body.expiresAt,
        },
      });
      const used = await t.app.server.inject({
        method: 'PUT',
        url: signed.body.url,
        headers: { 'content-type': 'text/plain' },
        payload: 'dropped',
      });
      expect(used.statusCode).toBe(201);
      const [uploaded] = await log('storage.file.uploaded');
      expect(uploaded).toMatchObject({
        actorType: 'anonymous',
        actorId: null,
        credential: 'signed_url',
        ip: '127.0.0.1',
        targetId: 'drop/in.txt',
        data: { signedUrlId: issued!.data.signedUrlId },
      });

      const download = await t.request({
        method: 'GET',
        url: '/api/v1/storage/signed-url/drop/in.txt',
        token: member,
      });
      expect(download.status).toBe(200);
      const [latest] = await log();
      expect(latest).toMatchObject({
        action: 'storage.signed_url.issued',
        credential: 'access_token',
        data: { method: 'GET', etag: expect.any(String) },
      });
    });

    it('records nothing for reads', async () => {
      expect((await upload(tenant.adminToken, 'reads/r.txt', 'read me')).statusCode).toBe(201);
      const before = (await log())[0]?.id;
      for (const url of [
        '/api/v1/storage/download/reads/r.txt',
        '/api/v1/storage/info/reads/r.txt',
        '/api/v1/storage/list?prefix=reads/',
        '/api/v1/storage/usage',
        '/api/v1/users',
        '/api/v1/jobs',
      ]) {
        const res = await t.app.server.inject({
          method: 'GET',
          url,
          headers: { authorization: `Bearer ${tenant.adminToken}` },
        });
        expect(res.statusCode, url).toBe(200);
      }
      expect((await log())[0]?.id).toBe(before);
    });

    it('records every refusal of an authenticated caller, from the guard or from a service', async () => {
      await upload(tenant.adminToken, 'denied/keep.txt', 'keep');
      const asMember = (method: 'GET' | 'DELETE' | 'POST', url: string, body?: object) =>
        t.request({ method, url, token: member, ...(body && { body }) });
      // the route's permission, checked by the guard
      expect((await asMember('DELETE', '/api/v1/storage/denied/keep.txt')).status).toBe(403);
      expect((await asMember('GET', '/api/v1/audit-events')).status).toBe(403);
      // a permission a handler checks (moving needs delete)
      expect(
        (await asMember('POST', '/api/v1/storage/move', { from: 'denied/keep.txt', to: 'x.txt' })).status,
      ).toBe(403);
      // another tenant named in the header
      const foreign = await t.request({
        method: 'GET',
        url: '/api/v1/users',
        token: member,
        tenant: 'elsewhere',
      });
      expect(foreign.status).toBe(403);

      const denials = (await log('access.denied')).slice(0, 4).reverse();
      expect(denials.map((e) => [e.targetId, e.data.code])).toEqual([
        ['DELETE /api/v1/storage/*', 'PLX_PERMISSION_DENIED'],
        ['GET /api/v1/audit-events', 'PLX_PERMISSION_DENIED'],
        ['POST /api/v1/storage/move', 'PLX_PERMISSION_DENIED'],
        ['GET /api/v1/users', 'PLX_TENANT_HEADER_FORBIDDEN'],
      ]);
      expect(denials[0]).toMatchObject({ actorType: 'user', credential: 'access_token', ip: '127.0.0.1' });
      expect(denials[0]!.data.detail).toBe('missing permission storage:file:delete');

      // a forged signed URL names a tenant nobody verified: nothing is written into its log
      const before = (await log())[0]?.id;
      const forged = await t.app.server.inject({
        method: 'GET',
        url: `/api/v1/storage/signed/denied/keep.txt?tenant=${tenant.id}&expires=9999999999&version=${tenant.id}&signature=AAAA`,
      });
      expect(forged.statusCode).toBe(403);
      expect((await log())[0]?.id).toBe(before);
    });

    it('records job and schedule creation, not an idempotent replay', async () => {
      const enqueue = (body: object) =>
        t.request({ method: 'POST', url: '/api/v1/jobs', token: tenant.adminToken, body });
      const job = await enqueue({ type: 'test.noop', runAt: '2099-01-01T00:00:00Z', idempotencyKey: 'once' });
      expect(job.status).toBe(201);
      expect(
        (await enqueue({ type: 'test.noop', runAt: '2099-01-01T00:00:00Z', idempotencyKey: 'once' })).status,
      ).toBe(201);
      const bulk = await t.request({
        method: 'POST',
        url: '/api/v1/jobs/bulk',
        token: tenant.adminToken,
        body: { jobs: [{ type: 'test.noop', runAt: '2099-01-01T00:00:00Z' }, { type: 'test.noop' }] },
      });
      expect(bulk.status).toBe(201);
      const created = await log('job.created');
      expect(created.map((e) => e.targetId).sort()).toEqual(
        [job.body.id, ...bulk.body.items.map((j: { id: string }) => j.id)].sort(),
      );
      expect(created[0]).toMatchObject({
        actorId: tenant.adminId,
        targetType: 'job',
        data: { type: 'test.noop' },
      });

      const schedule = await t.request({
        method: 'POST',
        url: '/api/v1/jobs/schedule',
        token: tenant.adminToken,
        body: { type: 'test.noop', cron: '@yearly', timezone: 'Europe/Paris' },
      });
      expect(schedule.status).toBe(201);
      const [scheduled] = await log('job_schedule.created');
      expect(scheduled).toMatchObject({
        actorId: tenant.adminId,
        targetType: 'job_schedule',
        targetId: schedule.body.id,
        data: { type: 'test.noop', cron: '@yearly', timezone: 'Europe/Paris' },
      });
    });

    it("records a tenant's settings changes in its own log, by the super admin who made them", async () => {
      const root = await t.adminToken();
      const patch = await t.request({
        method: 'PATCH',
        url: `/api/v1/tenants/${tenant.id}`,
        token: root,
        body: { settings: { storageQuotaBytes: 1_000_000 } },
      });
      expect(patch.status).toBe(200);
      const me = await t.request({ method: 'GET', url: '/api/v1/auth/me', token: root });
      const [updated] = await log('tenant.updated');
      expect(updated).toMatchObject({
        actorType: 'user',
        actorId: me.body.id,
        targetType: 'tenant',
        targetId: tenant.id,
        data: { changes: { storageQuotaBytes: { from: null, to: 1_000_000 } } },
      });
      // the same values again change nothing and record nothing
      const before = (await log())[0]?.id;
      await t.request({
        method: 'PATCH',
        url: `/api/v1/tenants/${tenant.id}`,
        token: root,
        body: { settings: { storageQuotaBytes: 1_000_000 } },
      });
      expect((await log())[0]?.id).toBe(before);
    });
  });
}
