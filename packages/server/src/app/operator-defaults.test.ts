import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../../test/harness.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));

describe('operator defaults: /metrics behind a token, logs for people at a terminal', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp('pglite', { metricsToken: 'scrape-token-1234' });
  });
  afterAll(() => t?.close());

  it('answers /metrics only with the bearer token of PLEXICA_METRICS_TOKEN', async () => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong' },
      { authorization: 'Bearer scrape-token-12345' },
    ];
    for (const headers of attempts) {
      const res = await t.request({ method: 'GET', url: '/metrics', headers });
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect(String(res.headers['content-type'])).toContain('application/problem+json');
      expect(res.body.code).toBe('PLX_AUTH_REQUIRED');
    }
    const ok = await t.request({
      method: 'GET',
      url: '/metrics',
      headers: { authorization: 'Bearer scrape-token-1234' },
    });
    expect(ok.status).toBe(200);
    expect(String(ok.body)).toContain('http_requests_total');
    // health and readiness probes stay open
    expect((await t.request({ method: 'GET', url: '/ready' })).status).toBe(200);
  });

  it('logs JSON lines by default off a terminal, and readable lines with PLEXICA_LOG_FORMAT=pretty', async () => {
    const script = `
      import { createLogger } from ${JSON.stringify(path.join(here, 'create-app.ts'))};
      const logger = createLogger({ logLevel: 'info', logFormat: process.argv[1] });
      logger.info({ tenantId: 't1' }, 'hello operator');
      logger.flush?.();
    `;
    const line = async (format: string) =>
      (await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, format])).stdout;
    const json = JSON.parse((await line('auto')).trim());
    expect(json).toMatchObject({ level: 30, msg: 'hello operator', tenantId: 't1' });
    const pretty = await line('pretty');
    expect(pretty).toContain('hello operator');
    expect(pretty).toContain('INFO');
    expect(pretty.trimStart().startsWith('{')).toBe(false);
  });
});
