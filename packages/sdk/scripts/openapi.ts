import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
// the SDK's only imports of the server's wiring (scripts/error-codes.ts reads the catalogue)
import { createApp } from '../../server/src/app/create-app.js';
import { loadConfig } from '../../server/src/config/index.js';

/**
 * The OpenAPI document of the current routes, from a throwaway embedded app
 * (the document is built from the route schemas, so it needs the real wiring).
 */
export async function buildOpenApiDocument(): Promise<unknown> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'plexica-openapi-'));
  const app = await createApp(
    loadConfig({}, { dataDir, logLevel: 'silent', adminPassword: 'openapi-generator-1' }),
  );
  try {
    return app.server.swagger();
  } finally {
    await app.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}
