import { sql } from 'kysely';
import type { RequestContext, TenantRef } from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import { tenantScope } from '../../infra/database/tenant-scope.js';
import { inTransaction } from '../../infra/database/transaction.js';
import { PlexicaError } from '../../infra/errors.js';
import type { JobQueueService, JobRun, JobStatus } from '../jobs/index.js';
import type { SearchTenantTables } from './tables.js';
import type { TypeRegistry, TypeState } from './types.js';
import { type FieldValue, toRow, writeRows } from './write.js';

export const REINDEX_JOB = 'search.reindex';
const BATCH = 500;

interface StoredRow {
  id: string;
  title: string;
  body: string | null;
  fields: Record<string, FieldValue>;
  tags: string[];
  access: string[] | null;
  updated_at: Date;
}

/**
 * Rebuilds a type's index as generation n+1 beside n (seed 000 edge case 6): searches
 * keep reading n and never see a half-built index; writes go to both while it builds;
 * the swap is one update; cancel drops what was built. Progress is the job's.
 */
export function createReindexer(deps: {
  db: Executor;
  registry: TypeRegistry;
  jobs: JobQueueService;
  maxBytes: number;
}) {
  const { db, registry, jobs } = deps;
  const types = (executor: Executor, tenant: TenantRef) => tenantScope<SearchTenantTables>(executor, tenant);

  async function dropBuilding(tenant: TenantRef, type: string, building: number): Promise<void> {
    await sql`delete from ${sql.id(tenant.schema, 'search_documents')} where type = ${type} and generation = ${building}`.execute(
      db,
    );
    await types(db, tenant)
      .updateTable('search_types')
      .set({ building_generation: null })
      .where('type', '=', type)
      .where('building_generation', '=', building)
      .execute();
  }

  async function build(run: JobRun<{ type: string }>): Promise<{ documents: number; generation: number }> {
    const { tenant } = run;
    const type = run.data.type;
    let state: TypeState = await registry.forWrite(db, tenant, type);
    if (state.building === null) {
      // a retry after a failed attempt (which dropped its generation)
      await types(db, tenant)
        .updateTable('search_types')
        .set({ building_generation: state.generation + 1 })
        .where('type', '=', type)
        .execute();
      state = await registry.forWrite(db, tenant, type);
    }
    const building = state.building ?? state.generation + 1;
    const language = await registry.languageOf(db, tenant);
    const docs = sql.id(tenant.schema, 'search_documents');
    try {
      const counted = await sql<{
        n: number;
      }>`select count(*)::int as n from ${docs} where type = ${type} and generation = ${state.generation}`.execute(
        db,
      );
      const total = counted.rows[0]?.n ?? 0;
      const declared = new Set([
        ...Object.keys(state.definition.searchable ?? {}),
        ...(state.definition.attributes ?? []),
      ]);
      const target: TypeState = { ...state, generation: building, building: null, language };
      let done = 0;
      let last = '';
      for (;;) {
        if (run.signal.aborted) throw new PlexicaError('PLX_SEARCH_REINDEX_CANCELLED');
        const copied = await db.transaction().execute(async (trx) => {
          // FOR SHARE: a delete of these rows waits for the copy, then removes both generations
          const batch =
            await sql<StoredRow>`select id, title, body, fields, tags, access, updated_at from ${docs}
            where type = ${type} and generation = ${state.generation} and id > ${last}
            order by id limit ${BATCH} for share`.execute(trx);
          const rows = batch.rows.map((r) => {
            const fields = Object.fromEntries(Object.entries(r.fields).filter(([k]) => declared.has(k)));
            const row = toRow(
              {
                type,
                id: r.id,
                title: r.title,
                ...(r.body !== null && { body: r.body }),
                fields,
                tags: r.tags,
                updatedAt: r.updated_at.toISOString(),
              },
              target,
              Number.MAX_SAFE_INTEGER,
            );
            return { ...row, access: r.access };
          });
          await writeRows(trx, tenant, target, rows, language);
          return batch.rows;
        });
        if (copied.length === 0) break;
        last = copied[copied.length - 1]?.id ?? last;
        done += copied.length;
        await run.updateProgress(Math.min(99, Math.floor((done / Math.max(total, 1)) * 100)));
      }
      if (run.signal.aborted) throw new PlexicaError('PLX_SEARCH_REINDEX_CANCELLED');
      await types(db, tenant)
        .updateTable('search_types')
        .set({ generation: building, building_generation: null, language, updated_at: sql`now()` })
        .where('type', '=', type)
        .execute();
      // searches read the new generation from here on; the old one goes
      await sql`delete from ${docs} where type = ${type} and generation < ${building}`.execute(db);
      await run.updateProgress(100);
      return { documents: done, generation: building };
    } catch (err) {
      await dropBuilding(tenant, type, building);
      throw err;
    }
  }

  return {
    define(): void {
      jobs.define<{ type: string }>({
        type: REINDEX_JOB,
        maxAttempts: 3,
        timeoutMs: 3_600_000,
        concurrency: 1,
        tenantConcurrency: 1,
        handler: build,
      });
    },
    /** Starts a rebuild of `type`; one at a time per type (PLX_SEARCH_REINDEX_RUNNING). */
    async start(ctx: RequestContext, tenant: TenantRef, type: string): Promise<JobStatus> {
      const state = await registry.forWrite(db, tenant, type);
      if (state.building !== null) {
        // a reindex cancelled before it ran leaves its mark: take it over when no job holds it
        // (outside the transaction below: the job list reads through its own handle)
        const open = await Promise.all(
          (['pending', 'running'] as const).map((status) =>
            jobs.list(ctx, { status, type: REINDEX_JOB, limit: 100, offset: 0 }),
          ),
        );
        const holder = open
          .flatMap((page) => page.items)
          .find((job) => (job.data as { type?: string }).type === type);
        if (holder)
          throw new PlexicaError('PLX_SEARCH_REINDEX_RUNNING', {
            detail: `reindex job ${holder.id} of ${type} is ${holder.status}`,
          });
        await dropBuilding(tenant, type, state.building);
      }
      return inTransaction(db, async (tx) => {
        const marked = await types(tx.db, tenant)
          .updateTable('search_types')
          .set({ building_generation: state.generation + 1 })
          .where('type', '=', type)
          .where('building_generation', 'is', null)
          .executeTakeFirst();
        if (Number(marked.numUpdatedRows) === 0)
          throw new PlexicaError('PLX_SEARCH_REINDEX_RUNNING', {
            detail: `a reindex of ${type} is already running`,
          });
        return jobs.enqueueIn(tx, ctx, { type: REINDEX_JOB, data: { type } });
      });
    },
  };
}
