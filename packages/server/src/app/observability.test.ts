import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, DATABASES, type TestApp } from '../../test/harness.js';

for (const kind of DATABASES) {
  describe(`health, metrics and OpenAPI (${kind})`, () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp(kind, { corsOrigins: ['https://console.example'] });
    });
    afterAll(async () => {
      await t?.close();
    });

    it('reports each dependency with its latency on /health and readiness on /ready', async () => {
      const health = await t.request({ method: 'GET', url: '/health' });
      expect(health.status).toBe(200);
      expect(health.body.status).toBe('up');
      expect(health.body.checks.database.status).toBe('up');
      expect(typeof health.body.checks.database.latencyMs).toBe('number');
      expect((await t.request({ method: 'GET', url: '/ready' })).body).toEqual({ status: 'ready' });
    });

    it('exposes the seed 003 metric names without tenant ids in labels', async () => {
      const tenant = await t.createTenant('metrics-co');
      await t.request({ method: 'GET', url: '/api/v1/users', token: tenant.adminToken });
      const metrics = await t.request({ method: 'GET', url: '/metrics' });
      expect(metrics.status).toBe(200);
      const text = String(metrics.body);
      for (const name of [
        'http_requests_total',
        'http_request_duration_seconds',
        'db_query_duration_seconds',
        'active_tenants',
        'active_plugins',
      ]) {
        expect(text).toContain(`# TYPE ${name} `);
      }
      expect(text).toMatch(/http_requests_total\{method="GET",route="\/api\/v1\/users",status="200"\} \d+/);
      expect(text).toMatch(/db_query_duration_seconds_count\{operation="select",table="users"\} \d+/);
      expect(text).toMatch(/^active_tenants [1-9]\d*$/m);
      expect(text).not.toContain('tenant_id');
      expect(text).not.toContain(tenant.id);
    });

    it('echoes X-Trace-ID and sets security headers', async () => {
      const res = await t.request({
        method: 'GET',
        url: '/health',
        headers: { 'x-trace-id': 'trace-abc.123' },
      });
      expect(res.headers['x-trace-id']).toBe('trace-abc.123');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['strict-transport-security']).toBeDefined();
    });

    it('allows CORS for configured origins only', async () => {
      const allowed = await t.request({
        method: 'GET',
        url: '/health',
        headers: { origin: 'https://console.example' },
      });
      expect(allowed.headers['access-control-allow-origin']).toBe('https://console.example');
      const other = await t.request({
        method: 'GET',
        url: '/health',
        headers: { origin: 'https://evil.example' },
      });
      expect(other.headers['access-control-allow-origin']).toBeUndefined();
    });

    it('serves an OpenAPI 3.1 document covering every /api/v1 route, and the docs page', async () => {
      const doc = await t.request({ method: 'GET', url: '/api/v1/openapi.json' });
      expect(doc.status).toBe(200);
      expect(doc.body.openapi).toBe('3.1.0');
      const documented = new Set(
        Object.entries(doc.body.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
          Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
        ),
      );
      const registered = t.app.server
        .printRoutes({ commonPrefix: false })
        .split('\n')
        .filter((line) => line.includes('/api/v1/'));
      expect(registered.length).toBeGreaterThan(0);
      for (const op of [
        'POST /api/v1/tenants',
        'GET /api/v1/users/{id}',
        'POST /api/v1/api-keys',
        'POST /api/v1/auth/login',
      ]) {
        expect(documented.has(op), op).toBe(true);
      }
      const login = doc.body.paths['/api/v1/auth/login'].post;
      expect(login.security).toEqual([]);
      expect(login.responses['4XX'] ?? login.responses['4xx']).toBeDefined();
      const docs = await t.request({ method: 'GET', url: '/docs/' });
      expect(docs.status).toBe(200);
      expect(String(docs.headers['content-type'])).toContain('text/html');
    });
  });
}
