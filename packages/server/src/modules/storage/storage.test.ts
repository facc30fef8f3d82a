import { createHash } from 'node:crypto';
import http from 'node:http';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORAGE_ENGINES } from '../../../test/engines.js';
import { createTestApp, TEST_MASTER_KEY, type TestApp } from '../../../test/harness.js';
import { type S3Fixture, startS3rver } from '../../../test/s3-fixture.js';
import { publicOrigin } from './routes/index.js';
import { createUrlSigner } from './signing.js';

/** GET with the path sent exactly as written (fetch and inject both normalise it). */
function rawGet(base: string, path: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.path = path;
    req.on('error', reject);
    req.end();
  });
}

const BAD_PATHS: [string, RegExp][] = [
  ['../../etc/passwd', /"\.\." segment/],
  ['a/../../b', /"\.\." segment/],
  ['./a', /"\." segment/],
  ['/etc/passwd', /absolute/],
  ['a\\..\\b', /backslash/],
  ['a\u0000b', /NUL/],
  ['a\u0007b', /control character/],
  ['%2e%2e%2fetc', /encoded/],
  ['a//b', /empty segment/],
  ['a/', /empty segment/],
  ['C:/windows', /drive letter/],
  [`${'x'.repeat(300)}/a`, /segment longer than 255/],
  [Array.from({ length: 120 }, () => 'abcdefghi').join('/'), /longer than 1024 bytes/],
];

for (const { database: db, driver } of STORAGE_ENGINES) {
  describe(`storage over HTTP (${driver} on ${db})`, () => {
    let t: TestApp;
    let s3: S3Fixture | undefined;
    let a: { id: string; slug: string; adminToken: string };
    let b: { id: string; slug: string; adminToken: string };
    let member: string;
    let presigned: boolean;

    /** Raw-body upload through `app.inject`. */
    const put = (
      token: string,
      filePath: string,
      body: string | Buffer,
      headers: Record<string, string> = {},
    ) =>
      t.app.server.inject({
        method: 'POST',
        url: `/api/v1/storage/upload?path=${encodeURIComponent(filePath)}`,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', ...headers },
        payload: body,
      });
    const get = (token: string, url: string, headers: Record<string, string> = {}) =>
      t.app.server.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}`, ...headers } });
    const download = (token: string, filePath: string, headers: Record<string, string> = {}) =>
      get(token, `/api/v1/storage/download/${filePath}`, headers);
    const usage = async (token: string) => (await get(token, '/api/v1/storage/usage')).json();
    const settings = (tenantId: string, body: Record<string, number>) =>
      t
        .adminToken()
        .then((token) =>
          t.request({ method: 'PATCH', url: `/api/v1/tenants/${tenantId}`, token, body: { settings: body } }),
        );

    beforeAll(async () => {
      s3 = driver === 's3' ? await startS3rver() : undefined;
      t = await createTestApp(db, s3?.config() ?? {});
      // what the suite branches on: the engine signs downloads itself (S3), or Plexica does
      presigned = t.app.blobStore.presignGet !== undefined;
      a = await t.createTenant('files-a');
      b = await t.createTenant('files-b');
      member = await t.createMember('files-a', a.adminToken, 'member@files-a.test');
    });
    afterAll(async () => {
      await t?.close();
      await s3?.close();
    });

    it('round-trips a raw upload with the headers a browser needs', async () => {
      const res = await put(a.adminToken, 'docs/report.pdf', Buffer.from('%PDF-1.7 hello'), {
        'content-type': 'application/pdf',
      });
      expect(res.statusCode, res.body).toBe(201);
      const file = res.json();
      expect(file).toMatchObject({ path: 'docs/report.pdf', size: 14, contentType: 'application/pdf' });
      expect(file.etag).toMatch(/^"[0-9a-f-]{36}"$/);

      const back = await download(a.adminToken, 'docs/report.pdf');
      expect(back.statusCode).toBe(200);
      expect(back.body).toBe('%PDF-1.7 hello');
      expect(back.headers).toMatchObject({
        'content-type': 'application/pdf',
        'content-length': '14',
        etag: file.etag,
        'accept-ranges': 'bytes',
        'x-content-type-options': 'nosniff',
      });
      expect(back.headers['content-disposition']).toBe(
        `inline; filename="report.pdf"; filename*=UTF-8''report.pdf`,
      );
      expect(back.headers['content-security-policy']).toContain('sandbox');
      expect(new Date(String(back.headers['last-modified'])).getTime()).toBeGreaterThan(0);
    });

    it('accepts multipart/form-data with the path field before the file', async () => {
      const boundary = '----plexica-test';
      const body = [
        `--${boundary}`,
        'Content-Disposition: form-data; name="path"',
        '',
        'images/ünïcode logo.png',
        `--${boundary}`,
        'Content-Disposition: form-data; name="file"; filename="logo.png"',
        'Content-Type: image/png',
        '',
        'PNGDATA',
        `--${boundary}--`,
        '',
      ].join('\r\n');
      const res = await t.app.server.inject({
        method: 'POST',
        url: '/api/v1/storage/upload',
        headers: {
          authorization: `Bearer ${a.adminToken}`,
          'content-type': `multipart/form-data; boundary=${boundary}`,
        },
        payload: body,
      });
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json()).toMatchObject({
        path: 'images/ünïcode logo.png',
        size: 7,
        contentType: 'image/png',
      });
      const back = await download(a.adminToken, encodeURI('images/ünïcode logo.png'));
      expect(back.body).toBe('PNGDATA');
      expect(back.headers['content-disposition']).toContain("filename*=UTF-8''%C3%BCn%C3%AFcode%20logo.png");

      const missing = await t.app.server.inject({
        method: 'POST',
        url: '/api/v1/storage/upload',
        headers: {
          authorization: `Bearer ${a.adminToken}`,
          'content-type': `multipart/form-data; boundary=${boundary}`,
        },
        payload: `--${boundary}\r\nContent-Disposition: form-data; name="path"\r\n\r\nx.txt\r\n--${boundary}--\r\n`,
      });
      expect(missing.statusCode).toBe(400);
      expect(missing.json().code).toBe('PLX_STORAGE_UPLOAD_INVALID');
    });

    it('guesses the content type from the extension, and refuses a malformed one', async () => {
      expect((await put(a.adminToken, 'notes/a.json', '{"a":1}')).json().contentType).toBe(
        'application/json',
      );
      const odd = await put(a.adminToken, 'notes/a.txt', 'x', { 'content-type': 'not a type' });
      expect(odd.statusCode).toBe(415);
      expect(odd.json().code).toBe('PLX_UNSUPPORTED_MEDIA_TYPE');
      const params = await put(a.adminToken, 'notes/a.txt', 'x', { 'content-type': 'text/plain; charset' });
      expect(params.statusCode).toBe(400);
      expect(params.json().code).toBe('PLX_STORAGE_UPLOAD_INVALID');
      const noPath = await t.app.server.inject({
        method: 'POST',
        url: '/api/v1/storage/upload',
        headers: { authorization: `Bearer ${a.adminToken}`, 'content-type': 'text/plain' },
        payload: 'x',
      });
      expect(noPath.statusCode).toBe(400);
      expect(noPath.json().errors).toEqual([
        { field: 'querystring.path', message: 'is required for a raw-body upload' },
      ]);
    });

    it('answers ranges with 206 and Content-Range, and 416 past the end', async () => {
      await put(a.adminToken, 'ranges.bin', '0123456789');
      const cases: [string, number, string, string | undefined][] = [
        ['bytes=2-5', 206, '2345', 'bytes 2-5/10'],
        ['bytes=0-0', 206, '0', 'bytes 0-0/10'],
        ['bytes=7-', 206, '789', 'bytes 7-9/10'],
        ['bytes=-3', 206, '789', 'bytes 7-9/10'],
        ['bytes=5-100', 206, '56789', 'bytes 5-9/10'],
        ['bytes=0-1,5-6', 200, '0123456789', undefined],
        ['lines=1-2', 200, '0123456789', undefined],
      ];
      for (const [range, status, body, contentRange] of cases) {
        const res = await download(a.adminToken, 'ranges.bin', { range });
        expect(res.statusCode, range).toBe(status);
        expect(res.body, range).toBe(body);
        expect(res.headers['content-range'], range).toBe(contentRange);
        expect(res.headers['content-length'], range).toBe(String(body.length));
      }
      const beyond = await download(a.adminToken, 'ranges.bin', { range: 'bytes=50-60' });
      expect(beyond.statusCode).toBe(416);
      expect(beyond.json()).toMatchObject({ code: 'PLX_STORAGE_RANGE_NOT_SATISFIABLE', size: 10 });
    });

    it('answers If-None-Match with 304 and HEAD with headers only', async () => {
      const { etag } = (await put(a.adminToken, 'cached.txt', 'cache me')).json();
      const again = await download(a.adminToken, 'cached.txt', { 'if-none-match': etag });
      expect(again.statusCode).toBe(304);
      expect(again.body).toBe('');
      const head = await t.app.server.inject({
        method: 'HEAD',
        url: '/api/v1/storage/download/cached.txt',
        headers: { authorization: `Bearer ${a.adminToken}` },
      });
      expect(head.statusCode).toBe(200);
      expect(head.headers['content-length']).toBe('8');
      expect(head.body).toBe('');
    });

    it('lists by prefix in path order with a cursor, never mixing prefixes', async () => {
      for (const name of ['list/b.txt', 'list/a.txt', 'list/sub/c.txt', 'listing.txt', 'lisz.txt'])
        expect((await put(a.adminToken, name, name)).statusCode).toBe(201);
      const first = (await get(a.adminToken, '/api/v1/storage/list?prefix=list/&limit=2')).json();
      expect(first.items.map((f: { path: string }) => f.path)).toEqual(['list/a.txt', 'list/b.txt']);
      expect(first.nextCursor).toEqual(expect.any(String));
      const second = (
        await get(a.adminToken, `/api/v1/storage/list?prefix=list/&limit=2&cursor=${first.nextCursor}`)
      ).json();
      expect(second).toEqual({
        items: [expect.objectContaining({ path: 'list/sub/c.txt' })],
        nextCursor: null,
      });
      const bare = (await get(a.adminToken, '/api/v1/storage/list?prefix=list')).json();
      expect(bare.items.map((f: { path: string }) => f.path)).toEqual([
        'list/a.txt',
        'list/b.txt',
        'list/sub/c.txt',
        'listing.txt',
      ]);
      const forged = await get(a.adminToken, '/api/v1/storage/list?prefix=list/&cursor=bm9wZQ');
      expect(forged.statusCode).toBe(400);
      const badPrefix = await get(a.adminToken, '/api/v1/storage/list?prefix=../');
      expect(badPrefix.json().code).toBe('PLX_STORAGE_PATH_INVALID');
    });

    it('reads metadata, copies, moves and deletes, keeping usage exact', async () => {
      const start = await usage(a.adminToken);
      await put(a.adminToken, 'ops/one.txt', '12345');
      const info = (await get(a.adminToken, '/api/v1/storage/info/ops/one.txt')).json();
      expect(info).toMatchObject({ path: 'ops/one.txt', size: 5, contentType: 'text/plain' });

      const copy = await t.request({
        method: 'POST',
        url: '/api/v1/storage/copy',
        token: a.adminToken,
        body: { from: 'ops/one.txt', to: 'ops/two.txt' },
      });
      expect(copy.status).toBe(200);
      expect(copy.body.etag).not.toBe(info.etag);
      expect((await download(a.adminToken, 'ops/two.txt')).body).toBe('12345');

      const refused = await t.request({
        method: 'POST',
        url: '/api/v1/storage/move',
        token: a.adminToken,
        body: { from: 'ops/two.txt', to: 'ops/one.txt', overwrite: false },
      });
      expect(refused.status).toBe(409);
      expect(refused.body.code).toBe('PLX_STORAGE_FILE_EXISTS');

      const moved = await t.request({
        method: 'POST',
        url: '/api/v1/storage/move',
        token: a.adminToken,
        body: { from: 'ops/two.txt', to: 'ops/three.txt' },
      });
      expect(moved.status).toBe(200);
      expect(moved.body.etag).toBe(copy.body.etag); // the same contents, renamed
      expect((await download(a.adminToken, 'ops/two.txt')).statusCode).toBe(404);
      expect(await usage(a.adminToken)).toMatchObject({
        bytes: start.bytes + 10,
        objects: start.objects + 2,
      });

      const del = await t.app.server.inject({
        method: 'DELETE',
        url: '/api/v1/storage/ops/three.txt',
        headers: { authorization: `Bearer ${a.adminToken}` },
      });
      expect(del.statusCode).toBe(204);
      const gone = await t.app.server.inject({
        method: 'DELETE',
        url: '/api/v1/storage/ops/three.txt',
        headers: { authorization: `Bearer ${a.adminToken}` },
      });
      expect(gone.json().code).toBe('PLX_STORAGE_FILE_NOT_FOUND');
      expect(await usage(a.adminToken)).toMatchObject({ bytes: start.bytes + 5, objects: start.objects + 1 });

      const noOverwrite = await put(a.adminToken, 'ops/one.txt', 'zzz', {});
      expect(noOverwrite.statusCode).toBe(201);
      const kept = await t.app.server.inject({
        method: 'POST',
        url: `/api/v1/storage/upload?path=ops/one.txt&overwrite=false`,
        headers: { authorization: `Bearer ${a.adminToken}`, 'content-type': 'text/plain' },
        payload: 'lost?',
      });
      expect(kept.statusCode).toBe(409);
      expect((await download(a.adminToken, 'ops/one.txt')).body).toBe('zzz');
    });

    it('refuses every kind of bad path with one precise error', async () => {
      for (const [bad, message] of BAD_PATHS) {
        const res = await put(a.adminToken, bad, 'x');
        expect(res.statusCode, bad).toBe(400);
        expect(res.json().code, bad).toBe('PLX_STORAGE_PATH_INVALID');
        expect(res.json().errors[0].message, bad).toMatch(message);
      }
      // traversal arriving through the URL path, raw, encoded once and twice; over a real
      // socket, because app.inject resolves dot segments before routing
      const address = await t.app.server.listen({ port: 0, host: '127.0.0.1' });
      for (const url of [
        '/api/v1/storage/download/a/../../etc/passwd',
        '/api/v1/storage/download/..%2F..%2Fetc%2Fpasswd',
        '/api/v1/storage/download/a/%2e%2e/%2e%2e/b',
        '/api/v1/storage/download/%252e%252e%252fetc',
        '/api/v1/storage/download/a%5c..%5cb',
        '/api/v1/storage/download/a%00b',
      ]) {
        const res = await rawGet(address, url, a.adminToken);
        expect(res.status, url).toBe(400);
        expect(JSON.parse(res.body).code, url).toBe('PLX_STORAGE_PATH_INVALID');
      }
      expect((await usage(a.adminToken)).objects).toBeGreaterThan(0);
      const listing = (await get(a.adminToken, '/api/v1/storage/list?limit=1000')).json();
      expect(listing.items.some((f: { path: string }) => f.path.includes('..'))).toBe(false);
    });

    it('enforces the tenant’s file size limit, streamed or declared, without touching the old file', async () => {
      await put(a.adminToken, 'limits/keep.bin', 'original');
      expect((await settings(a.id, { storageMaxFileSize: 1000 })).status).toBe(200);
      try {
        const declared = await put(a.adminToken, 'limits/keep.bin', Buffer.alloc(1001));
        expect(declared.statusCode).toBe(413);
        expect(declared.json()).toMatchObject({ code: 'PLX_STORAGE_FILE_TOO_LARGE', maxFileSize: 1000 });
        // no Content-Length: the limit fires while streaming
        const streamed = await t.app.server.inject({
          method: 'POST',
          url: '/api/v1/storage/upload?path=limits/keep.bin',
          headers: { authorization: `Bearer ${a.adminToken}`, 'content-type': 'application/octet-stream' },
          payload: Readable.from([Buffer.alloc(600), Buffer.alloc(600)]),
        });
        expect(streamed.statusCode).toBe(413);
        expect(streamed.json().code).toBe('PLX_STORAGE_FILE_TOO_LARGE');
        expect((await download(a.adminToken, 'limits/keep.bin')).body).toBe('original');
        expect((await put(a.adminToken, 'limits/ok.bin', Buffer.alloc(1000))).statusCode).toBe(201);
        expect((await usage(a.adminToken)).maxFileSize).toBe(1000);
      } finally {
        await settings(a.id, { storageMaxFileSize: 5 * 1024 ** 3 });
      }
    });

    it('enforces the tenant’s quota and reports usage against it', async () => {
      const quotaTenant = await t.createTenant(`quota-${driver}`.slice(0, 20));
      expect((await settings(quotaTenant.id, { storageQuotaBytes: 5000 })).status).toBe(200);
      const token = quotaTenant.adminToken;
      expect((await put(token, 'a.bin', Buffer.alloc(3000))).statusCode).toBe(201);
      const over = await put(token, 'b.bin', Buffer.alloc(3000));
      expect(over.statusCode).toBe(413);
      expect(over.json()).toMatchObject({
        code: 'PLX_STORAGE_QUOTA_EXCEEDED',
        quotaBytes: 5000,
        usedBytes: 3000,
      });
      // replacing a file counts only the difference
      expect((await put(token, 'a.bin', Buffer.alloc(4500))).statusCode).toBe(201);
      expect(await usage(token)).toEqual({
        bytes: 4500,
        objects: 1,
        quotaBytes: 5000,
        maxFileSize: 5 * 1024 ** 3,
      });
      const copy = await t.request({
        method: 'POST',
        url: '/api/v1/storage/copy',
        token,
        body: { from: 'a.bin', to: 'c.bin' },
      });
      expect(copy.body.code).toBe('PLX_STORAGE_QUOTA_EXCEEDED');
      expect(await usage(token)).toMatchObject({ bytes: 4500, objects: 1 });
    });

    it('serves signed URLs bound to tenant, path, method and time', async () => {
      await put(a.adminToken, 'signed/photo.jpg', 'JPEGDATA', { 'content-type': 'image/jpeg' });
      const signed = (
        await get(a.adminToken, '/api/v1/storage/signed-url/signed/photo.jpg?expiresIn=60')
      ).json();
      expect(signed.method).toBe('GET');
      expect(new Date(signed.expiresAt).getTime()).toBeGreaterThan(Date.now());
      if (presigned) {
        // the engine's own presigned URL: the client fetches from S3, not from us
        expect(signed.url).toContain(s3!.endpoint);
        expect(signed.url).toContain('X-Amz-Signature=');
        const res = await fetch(signed.url);
        expect(await res.text()).toBe('JPEGDATA');
        expect(res.headers.get('content-type')).toBe('image/jpeg');
      } else {
        // no PLEXICA_PUBLIC_URL and no allow-listed host here: the link is a path
        expect(signed.url).toMatch(/^\/api\/v1\/storage\/signed\/signed\/photo\.jpg\?/);
        const url = new URL(signed.url, 'http://plexica.test');
        const relative = url.pathname + url.search;
        const res = await t.app.server.inject({ method: 'GET', url: relative });
        expect(res.statusCode).toBe(200);
        expect(res.body).toBe('JPEGDATA');
        const ranged = await t.app.server.inject({
          method: 'GET',
          url: relative,
          headers: { range: 'bytes=0-3' },
        });
        expect(ranged.body).toBe('JPEG');

        const tamper = async (change: (u: URL) => void) => {
          const copy = new URL(url);
          change(copy);
          return t.app.server.inject({ method: 'GET', url: copy.pathname + copy.search });
        };
        for (const change of [
          (u: URL) => u.searchParams.set('tenant', b.id),
          (u: URL) => u.searchParams.set('expires', String(Number(u.searchParams.get('expires')) + 3600)),
          (u: URL) => {
            u.pathname = u.pathname.replace('photo.jpg', 'other.jpg');
          },
          (u: URL) => u.searchParams.set('signature', `${u.searchParams.get('signature')!.slice(0, -2)}AA`),
        ]) {
          const res = await tamper(change);
          expect(res.statusCode).toBe(403);
          expect(res.json().code).toBe('PLX_STORAGE_SIGNATURE_INVALID');
        }
        const asUpload = await t.app.server.inject({ method: 'PUT', url: relative, payload: 'overwrite!' });
        expect(asUpload.json().code).toBe('PLX_STORAGE_SIGNATURE_INVALID');
      }
      // a genuine URL signed in the past
      const signer = createUrlSigner([{ id: 'k', key: Buffer.from(TEST_MASTER_KEY, 'base64') }]);
      const { etag } = (await get(a.adminToken, '/api/v1/storage/info/signed/photo.jpg')).json();
      const old = signer.url({
        method: 'GET',
        tenantId: a.id,
        path: 'signed/photo.jpg',
        expires: 1_000_000,
        version: etag.slice(1, -1),
      });
      const expired = await t.app.server.inject({ method: 'GET', url: old });
      expect(expired.statusCode).toBe(403);
      expect(expired.json().code).toBe('PLX_STORAGE_SIGNATURE_EXPIRED');

      const missing = await get(a.adminToken, '/api/v1/storage/signed-url/signed/none.jpg');
      expect(missing.json().code).toBe('PLX_STORAGE_FILE_NOT_FOUND');
      const tooLong = await get(a.adminToken, '/api/v1/storage/signed-url/signed/photo.jpg?expiresIn=604801');
      expect(tooLong.statusCode).toBe(400);
    });

    it('takes uploads through a signed PUT URL, within the same limits', async () => {
      const signed = (
        await get(a.adminToken, '/api/v1/storage/signed-url/inbox/upload.txt?method=PUT&expiresIn=60')
      ).json();
      expect(signed.method).toBe('PUT');
      const url = new URL(signed.url, 'http://plexica.test');
      const res = await t.app.server.inject({
        method: 'PUT',
        url: url.pathname + url.search,
        headers: { 'content-type': 'text/plain' },
        payload: 'dropped in',
      });
      expect(res.statusCode, res.body).toBe(201);
      expect((await download(a.adminToken, 'inbox/upload.txt')).body).toBe('dropped in');
      const asDownload = await t.app.server.inject({ method: 'GET', url: url.pathname + url.search });
      expect(asDownload.json().code).toBe('PLX_STORAGE_SIGNATURE_INVALID');
      // a member may read but signing an upload is writing: members may, so may admins; API key scopes decide
      const key = await t.request({
        method: 'POST',
        url: '/api/v1/api-keys',
        token: a.adminToken,
        body: { name: 'reader', permissions: ['storage:file:read'] },
      });
      const reader = key.body.secret as string;
      const denied = await get(reader, '/api/v1/storage/signed-url/inbox/x.txt?method=PUT');
      expect(denied.statusCode).toBe(403);
      expect(denied.json().code).toBe('PLX_PERMISSION_DENIED');
    });

    it('lets members read and write but not delete', async () => {
      expect((await put(member, 'member/note.txt', 'hi')).statusCode).toBe(201);
      expect((await download(member, 'member/note.txt')).body).toBe('hi');
      const del = await t.app.server.inject({
        method: 'DELETE',
        url: '/api/v1/storage/member/note.txt',
        headers: { authorization: `Bearer ${member}` },
      });
      expect(del.statusCode).toBe(403);
      expect(del.json().code).toBe('PLX_PERMISSION_DENIED');
    });

    it('makes destroying contents need storage:file:delete: moving, and replacing by move, copy or upload', async () => {
      await put(a.adminToken, 'guarded/admin.txt', 'admin wrote this');
      expect((await put(member, 'guarded/mine.txt', 'member wrote this')).statusCode).toBe(201);
      const call = (token: string, action: 'copy' | 'move', body: Record<string, unknown>) =>
        t.request({ method: 'POST', url: `/api/v1/storage/${action}`, token, body });
      const refused = async (res: { status: number; body: { code: string } }) => {
        expect(res.status).toBe(403);
        expect(res.body.code).toBe('PLX_PERMISSION_DENIED');
      };
      // moving a file away vacates its path: that is deleting it
      await refused(await call(member, 'move', { from: 'guarded/admin.txt', to: 'guarded/taken.txt' }));
      // onto an existing file, by move, copy or upload: that is replacing it
      await refused(await call(member, 'move', { from: 'guarded/mine.txt', to: 'guarded/admin.txt' }));
      await refused(await call(member, 'copy', { from: 'guarded/mine.txt', to: 'guarded/admin.txt' }));
      const upload = await put(member, 'guarded/admin.txt', '');
      expect(upload.statusCode).toBe(403);
      expect(upload.json().code).toBe('PLX_PERMISSION_DENIED');
      // a member's signed upload URL may create, not replace
      const signed = await get(
        member,
        '/api/v1/storage/signed-url/guarded/admin.txt?method=PUT&expiresIn=60',
      );
      expect(signed.statusCode).toBe(200);
      const viaUrl = await t.app.server.inject({ method: 'PUT', url: signed.json().url, payload: '' });
      expect(viaUrl.statusCode).toBe(403);
      expect(viaUrl.json().code).toBe('PLX_PERMISSION_DENIED');
      expect((await download(a.adminToken, 'guarded/admin.txt')).body).toBe('admin wrote this');
      expect((await download(a.adminToken, 'guarded/mine.txt')).body).toBe('member wrote this');
      expect((await get(a.adminToken, '/api/v1/storage/info/guarded/taken.txt')).statusCode).toBe(404);

      // onto a new path, copying is only writing
      expect((await call(member, 'copy', { from: 'guarded/admin.txt', to: 'guarded/copy.txt' })).status).toBe(
        200,
      );
      // a tenant admin holds delete: replacing is theirs to do
      const replaced = await call(a.adminToken, 'move', {
        from: 'guarded/mine.txt',
        to: 'guarded/admin.txt',
      });
      expect(replaced.status).toBe(200);
      expect((await download(a.adminToken, 'guarded/admin.txt')).body).toBe('member wrote this');
    });

    it('never builds a signed link on a Host header nobody listed', async () => {
      await put(a.adminToken, 'hosts/x.txt', 'x');
      for (const method of ['GET', 'PUT']) {
        const res = await get(a.adminToken, `/api/v1/storage/signed-url/hosts/x.txt?method=${method}`, {
          host: 'attacker.example',
        });
        expect(res.statusCode).toBe(200);
        expect(res.json().url).not.toContain('attacker.example');
        // S3 downloads are S3's own URLs; everything Plexica serves stays a path here
        if (!presigned || method === 'PUT')
          expect(res.json().url).toMatch(/^\/api\/v1\/storage\/signed\/hosts\/x\.txt\?/);
      }
    });

    it('serves a signed download only for the version it was signed for', async () => {
      const sign = async () =>
        (await get(a.adminToken, '/api/v1/storage/signed-url/versions/doc.txt?expiresIn=60')).json()
          .url as string;
      const open = async (url: string) => {
        if (presigned) {
          const res = await fetch(url);
          return { status: res.status, body: await res.text(), code: undefined };
        }
        const res = await t.app.server.inject({ method: 'GET', url });
        return {
          status: res.statusCode,
          body: res.body,
          code: res.statusCode >= 400 ? res.json().code : undefined,
        };
      };
      // S3's presigned URL names the blob, which every write replaces: NoSuchKey once it is gone
      const stale = async (url: string) => {
        const res = await open(url);
        expect(res.status).toBe(presigned ? 404 : 410);
        if (!presigned) expect(res.code).toBe('PLX_STORAGE_SIGNED_URL_STALE');
        expect(res.body).not.toContain('second');
      };
      const remove = () =>
        t.app.server.inject({
          method: 'DELETE',
          url: '/api/v1/storage/versions/doc.txt',
          headers: { authorization: `Bearer ${a.adminToken}` },
        });

      await put(a.adminToken, 'versions/doc.txt', 'first');
      const first = await sign();
      expect((await open(first)).body).toBe('first');
      await put(a.adminToken, 'versions/doc.txt', 'second'); // overwritten
      await stale(first);

      const second = await sign();
      expect((await remove()).statusCode).toBe(204);
      await put(a.adminToken, 'versions/doc.txt', 'second, again'); // deleted and created again
      await stale(second);

      const third = await sign();
      expect((await remove()).statusCode).toBe(204); // deleted
      const gone = await open(third);
      expect(gone.status).toBe(404);
      if (!presigned) expect(gone.code).toBe('PLX_STORAGE_FILE_NOT_FOUND');
    });

    it('takes one upload per signed PUT URL, of the content type fixed at signing', async () => {
      const sign = async (query: string) => {
        const res = await get(
          a.adminToken,
          `/api/v1/storage/signed-url/once/a.txt?method=PUT&expiresIn=60${query}`,
        );
        expect(res.statusCode, res.body).toBe(200);
        return res.json().url as string;
      };
      const send = (url: string, type: string, payload: string) =>
        t.app.server.inject({ method: 'PUT', url, headers: { 'content-type': type }, payload });

      // one use: of two racing uploads through it exactly one lands
      const untyped = await sign('');
      const raced = await Promise.all([
        send(untyped, 'text/plain', 'racer one'),
        send(untyped, 'text/plain', 'racer two'),
      ]);
      expect(raced.map((r) => r.statusCode).sort()).toEqual([201, 410]);
      const winner = raced.find((r) => r.statusCode === 201)!;
      expect((await download(a.adminToken, 'once/a.txt')).body).toBe(
        winner === raced[0] ? 'racer one' : 'racer two',
      );

      // with the type fixed at signing, the upload must carry it
      const typed = await sign('&contentType=text/plain');
      const wrong = await send(typed, 'text/html', '<script>alert(1)</script>');
      expect(wrong.statusCode).toBe(415);
      expect(wrong.json()).toMatchObject({
        code: 'PLX_STORAGE_CONTENT_TYPE_MISMATCH',
        expected: 'text/plain',
      });
      const first = await send(typed, 'Text/Plain', 'once'); // a refused attempt did not use it up
      expect(first.statusCode, first.body).toBe(201);
      expect(first.json().contentType).toBe('text/plain');
      const again = await send(typed, 'text/plain', 'twice');
      expect(again.statusCode).toBe(410);
      expect(again.json().code).toBe('PLX_STORAGE_SIGNED_URL_USED');
      expect((await download(a.adminToken, 'once/a.txt')).body).toBe('once');

      const badType = await get(
        a.adminToken,
        '/api/v1/storage/signed-url/once/a.txt?method=PUT&contentType=nope',
      );
      expect(badType.statusCode).toBe(400);
      expect(badType.json().errors[0].field).toBe('querystring.contentType');
    });

    it('keeps tenants apart: the same path in B is a different file', async () => {
      await put(a.adminToken, 'shared/name.txt', 'A wrote this');
      expect((await download(b.adminToken, 'shared/name.txt')).statusCode).toBe(404);
      const head = await t.app.server.inject({
        method: 'HEAD',
        url: '/api/v1/storage/download/shared/name.txt',
        headers: { authorization: `Bearer ${b.adminToken}` },
      });
      expect(head.statusCode).toBe(404);
      expect((await put(b.adminToken, 'shared/name.txt', 'B wrote this')).statusCode).toBe(201);
      expect((await download(a.adminToken, 'shared/name.txt')).body).toBe('A wrote this');
      expect((await download(b.adminToken, 'shared/name.txt')).body).toBe('B wrote this');
      const bList = (await get(b.adminToken, '/api/v1/storage/list')).json();
      expect(bList.items.map((f: { path: string }) => f.path)).toEqual(['shared/name.txt']);
    });

    it('streams a large upload and download without changing a byte', async () => {
      const size = 48 * 1024 * 1024;
      const hash = createHash('sha256');
      let sent = 0;
      const source = new Readable({
        read() {
          if (sent >= size) return this.push(null);
          const chunk = Buffer.alloc(1024 * 1024, sent / 1024 / 1024);
          hash.update(chunk);
          sent += chunk.length;
          this.push(chunk);
        },
      });
      const res = await t.app.server.inject({
        method: 'POST',
        url: '/api/v1/storage/upload?path=big/blob.bin',
        headers: { authorization: `Bearer ${a.adminToken}`, 'content-type': 'application/octet-stream' },
        payload: source,
      });
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json().size).toBe(size);
      const back = await download(a.adminToken, 'big/blob.bin');
      expect(back.rawPayload.length).toBe(size);
      expect(createHash('sha256').update(back.rawPayload).digest('hex')).toBe(hash.digest('hex'));
    });

    it('removes a deleted tenant’s files when it is purged', async () => {
      const doomed = await t.createTenant(`doomed-${driver}`.slice(0, 20));
      await put(doomed.adminToken, 'x.txt', 'bye');
      const blobs = async () => {
        const keys: string[] = [];
        for await (const key of t.app.blobStore.keys(doomed.id)) keys.push(key);
        return keys;
      };
      expect(await blobs()).toHaveLength(1);
      const token = await t.adminToken();
      expect((await t.request({ method: 'DELETE', url: `/api/v1/tenants/${doomed.id}`, token })).status).toBe(
        200,
      );
      expect(await blobs()).toHaveLength(1); // kept through the retention window
      await t.app.services.tenants.purgeExpired(new Date(Date.now() + 400 * 86_400_000));
      expect(await blobs()).toEqual([]);
    });

    it('reports the storage engine in /health', async () => {
      const health = await t.request({ method: 'GET', url: '/health' });
      expect(health.body.checks.storage).toMatchObject({ status: 'up' });
    });
  });
}

describe('signed link origin', () => {
  const request = { protocol: 'https', host: 'Files.Example.com' };
  it('is the public URL when one is set, whatever the Host says', () => {
    expect(publicOrigin({ publicUrl: 'https://plexica.example', publicHosts: [] }, request)).toBe(
      'https://plexica.example',
    );
  });
  it('is the request’s Host only when the operator listed it', () => {
    expect(publicOrigin({ publicUrl: undefined, publicHosts: ['files.example.com'] }, request)).toBe(
      'https://files.example.com',
    );
    expect(publicOrigin({ publicUrl: undefined, publicHosts: ['files.example.com:8443'] }, request)).toBe(
      undefined,
    );
    expect(publicOrigin({ publicUrl: undefined, publicHosts: [] }, request)).toBe(undefined);
  });
});
