import type { TSchema } from '@sinclair/typebox';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { type Kysely, sql } from 'kysely';
import type { Logger } from 'pino';
import type { Definition, PayloadCheck } from './definitions.js';
import type { JobsTables } from './tables.js';

/**
 * Job types shared between processes through `core.job_types`, so that split
 * roles agree: a worker that defines `report.build` in code declares it (name,
 * payload schema, limits) at start, and an api process that has no handler for
 * it still checks and enqueues it instead of answering PLX_JOB_TYPE_UNKNOWN.
 * A type enqueued before any worker declared it is looked up again (at most
 * once a second), so starting the api role first is fine.
 */
export interface DeclaredTypes {
  /** Writes the types this process defines (the ones it can run). */
  publish(): Promise<void>;
  /** Reads the types other processes declared into the definitions. */
  refresh(): Promise<void>;
  /** Refreshes when one of `types` is unknown here (throttled). */
  ensure(types: Iterable<string>): Promise<void>;
}

const REFRESH_EVERY_MS = 1000;

export function createDeclaredTypes(deps: {
  db: Kysely<JobsTables>;
  definitions: Map<string, Definition>;
  logger: Logger;
}): DeclaredTypes {
  const { db, definitions, logger } = deps;
  const ajv = new Ajv.default({ allErrors: true, strict: false });
  addFormats.default(ajv);
  let lastRefresh = 0;
  let refreshing: Promise<void> | undefined;

  const compiled = (schema: unknown): PayloadCheck | undefined => {
    if (!schema) return undefined;
    try {
      const validate = ajv.compile(schema as object);
      return {
        Check: (data) => validate(data) as boolean,
        Errors: (data) => {
          validate(data);
          return (validate.errors ?? []).map((e) => ({
            path: e.instancePath,
            message: e.message ?? 'is invalid',
          }));
        },
      };
    } catch (err) {
      logger.warn(
        { err },
        'a declared job type has a payload schema Ajv cannot compile; payloads go unchecked',
      );
      return undefined;
    }
  };

  const refresh = async () => {
    lastRefresh = Date.now();
    const rows = await db.selectFrom('core.job_types').selectAll().execute();
    for (const row of rows) {
      const here = definitions.get(row.type);
      if (here && !here.declared) continue;
      const check = compiled(row.schema);
      definitions.set(row.type, {
        type: row.type,
        declared: true,
        handler: async () => {
          throw new Error(`job type ${row.type} is declared by another process; this one cannot run it`);
        },
        maxAttempts: row.max_attempts,
        timeoutMs: row.timeout_ms,
        concurrency: row.concurrency,
        tenantConcurrency: row.tenant_concurrency,
        retryDelaySeconds: row.retry_delay_seconds ?? undefined,
        ...(row.schema ? { schema: row.schema as TSchema } : {}),
        ...(check && { check }),
      });
    }
  };

  return {
    async publish() {
      const local = [...definitions.values()].filter((d) => !d.declared);
      if (local.length === 0) return;
      await db
        .insertInto('core.job_types')
        .values(
          local.map((d) => ({
            type: d.type,
            schema: d.schema ? JSON.stringify(d.schema) : null,
            max_attempts: d.maxAttempts,
            timeout_ms: d.timeoutMs,
            concurrency: d.concurrency,
            tenant_concurrency: d.tenantConcurrency,
            retry_delay_seconds: d.retryDelaySeconds ?? null,
          })),
        )
        .onConflict((oc) =>
          oc.column('type').doUpdateSet((eb) => ({
            schema: eb.ref('excluded.schema'),
            max_attempts: eb.ref('excluded.max_attempts'),
            timeout_ms: eb.ref('excluded.timeout_ms'),
            concurrency: eb.ref('excluded.concurrency'),
            tenant_concurrency: eb.ref('excluded.tenant_concurrency'),
            retry_delay_seconds: eb.ref('excluded.retry_delay_seconds'),
            updated_at: sql<Date>`now()`,
          })),
        )
        .execute();
    },
    refresh,
    async ensure(types) {
      const unknown = [...types].some((type) => !definitions.has(type));
      if (!unknown || Date.now() - lastRefresh < REFRESH_EVERY_MS) return;
      refreshing ??= refresh().finally(() => {
        refreshing = undefined;
      });
      await refreshing;
    },
  };
}
