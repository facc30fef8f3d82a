import { createConfig, lintFromString } from '@redocly/openapi-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../../test/harness.js';
import { operationIdOf } from './openapi.js';

describe('the OpenAPI document', () => {
  let t: TestApp;
  let doc: {
    paths: Record<string, Record<string, Record<string, unknown>>>;
    servers?: unknown[];
    info: Record<string, unknown>;
  };
  beforeAll(async () => {
    t = await createTestApp('pglite');
    doc = (await t.request({ method: 'GET', url: '/api/v1/openapi.json' })).body;
  });
  afterAll(() => t?.close());

  it("lints clean with Redocly's recommended rules (errors and warnings)", async () => {
    const config = await createConfig({ extends: ['recommended'] });
    const problems = await lintFromString({
      source: JSON.stringify(doc),
      absoluteRef: 'openapi.json',
      config,
    });
    const found = problems.map((p) => `${p.ruleId} ${p.location[0]?.pointer ?? ''}: ${p.message}`);
    expect(found).toEqual([]);
  });

  it('names every operation, uniquely, and describes every response', () => {
    const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((op) => op.operationId));
    expect(ids.every((id) => typeof id === 'string')).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(JSON.stringify(doc)).not.toContain('Default Response');
    expect(doc.info.license).toMatchObject({ identifier: 'Apache-2.0' });
    expect(operationIdOf('GET', '/api/v1/tenants/:tenantId/users')).toBe('getTenantsByTenantIdUsers');
  });

  it('documents X-Tenant-ID where a tenant is acted in, and upload bodies with a file', () => {
    const headerOf = (op: Record<string, unknown>) =>
      ((op.parameters ?? []) as { in: string; name: string }[]).find(
        (p) => p.in === 'header' && p.name === 'x-tenant-id',
      );
    expect(headerOf(doc.paths['/api/v1/users']!.get!)).toBeDefined();
    expect(headerOf(doc.paths['/api/v1/auth/login']!.post!)).toBeUndefined();
    const upload = doc.paths['/api/v1/storage/upload']!.post!.requestBody as {
      content: Record<string, { schema: { properties?: Record<string, { format?: string }> } }>;
    };
    expect(upload.content['multipart/form-data']!.schema.properties!.file!.format).toBe('binary');
    expect(doc.paths['/api/v1/storage/signed/{path}']!.put!.requestBody).toBeDefined();
  });

  it('documents the schedules at /job-schedules, not at the ambiguous /jobs/schedules (still served)', () => {
    expect(doc.paths['/api/v1/job-schedules']).toBeDefined();
    expect(doc.paths['/api/v1/jobs/schedules']).toBeUndefined();
  });
});
