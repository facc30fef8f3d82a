import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    pgliteTemplate: string;
  }
}

/**
 * Creating a PGlite database costs seconds (initdb); opening a copy costs
 * ~0.3 s. So one template is made per run and each test file copies it.
 */
export default async function setup(project: TestProject) {
  const root = await mkdtemp(path.join(os.tmpdir(), 'plexica-template-'));
  const db = await PGlite.create(path.join(root, 'pgdata'));
  await db.close();
  project.provide('pgliteTemplate', path.join(root, 'pgdata'));
  return async () => {
    await rm(root, { recursive: true, force: true });
  };
}
