import { sql } from 'kysely';
import { type RequestContext, requireTenant } from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import { inTransaction } from '../../infra/database/transaction.js';
import type { JobQueueService, JobStatus } from '../jobs/index.js';
import type { SearchConfig, SearchLanguage } from './config.js';
import { createReindexer } from './reindex.js';
import { createSearcher, type SearchQuery, type SearchResult } from './search.js';
import { pageOf } from './search-sql.js';
import { createTypeRegistry, type SearchTypeDefinition, type TypeState } from './types.js';
import { indexDocuments, type SearchDocument } from './write.js';

export type { SearchQuery, SearchResult } from './search.js';
export type { SearchTypeDefinition } from './types.js';
export type { SearchDocument } from './write.js';

/** A registered type as the API lists it. */
export interface SearchTypeInfo extends SearchTypeDefinition {
  source: 'api' | 'code';
  generation: number;
  reindexing: boolean;
  language: SearchLanguage;
}

/**
 * Seed 000 §7 `SearchService` (index, search, delete, reindex) plus bulk
 * writes, deletes by type or query, and type registration. Every call acts in
 * the caller's tenant schema.
 *
 * @example await search.index(ctx, { type: 'crm:contact', id: '42', title: 'John Smith' })
 */
export interface SearchService {
  /** A module's type, in every tenant; call before the app starts. */
  registerType(definition: SearchTypeDefinition): void;
  putType(ctx: RequestContext, definition: SearchTypeDefinition): Promise<SearchTypeInfo>;
  listTypes(ctx: RequestContext): Promise<SearchTypeInfo[]>;
  setLanguage(ctx: RequestContext, language: SearchLanguage): Promise<{ language: SearchLanguage }>;
  /** Upsert by (type, id); an older `updatedAt` never replaces a newer one. */
  index(ctx: RequestContext, document: SearchDocument): Promise<void>;
  /** All or nothing, in one transaction; `documents` may be an async stream (NDJSON). @returns how many */
  indexBulk(
    ctx: RequestContext,
    documents: AsyncIterable<SearchDocument> | Iterable<SearchDocument>,
  ): Promise<number>;
  search(ctx: RequestContext, query: SearchQuery): Promise<SearchResult>;
  /** Titles matching as you type, best first. */
  suggest(ctx: RequestContext, query: { q: string; types?: string[]; limit?: number }): Promise<string[]>;
  /** @returns whether it existed */
  delete(ctx: RequestContext, type: string, id: string): Promise<boolean>;
  deleteByType(ctx: RequestContext, type: string): Promise<number>;
  /** Deletes what `q` matches exactly (no prefix, no typos) among the types and filters given. */
  deleteByQuery(ctx: RequestContext, query: Pick<SearchQuery, 'q' | 'types' | 'filters'>): Promise<number>;
  /** Rebuilds a type's index in a background job; follow it with the job status API. */
  reindex(ctx: RequestContext, type: string): Promise<JobStatus>;
}

const BULK_BATCH = 1000;

export function createSearchService(deps: {
  db: Executor;
  jobs: JobQueueService;
  config: SearchConfig;
}): SearchService {
  const { db, config } = deps;
  const registry = createTypeRegistry({ db, defaultLanguage: config.searchLanguage });
  const searcher = createSearcher({ db, registry, countLimit: config.searchCountLimit });
  const reindexer = createReindexer({
    db,
    registry,
    jobs: deps.jobs,
    maxBytes: config.searchMaxDocumentBytes,
  });
  reindexer.define();
  const info = ([type, s]: [string, TypeState]): SearchTypeInfo => ({
    ...s.definition,
    type,
    source: s.source,
    generation: s.generation,
    reindexing: s.building !== null,
    language: s.language,
  });

  return {
    registerType: (definition) => registry.register(definition),
    async putType(ctx, definition) {
      const tenant = requireTenant(ctx);
      await registry.put(ctx, tenant, definition);
      const state = (await registry.list(tenant)).get(definition.type);
      if (!state) throw new Error(`type ${definition.type} vanished after it was registered`);
      return info([definition.type, state]);
    },
    async listTypes(ctx) {
      return [...(await registry.list(requireTenant(ctx)))].map(info);
    },
    async setLanguage(ctx, language) {
      const tenant = requireTenant(ctx);
      await sql`insert into ${sql.id(tenant.schema, 'search_settings')} (id, language) values (true, ${language})
        on conflict (id) do update set language = excluded.language`.execute(db);
      return { language };
    },
    async index(ctx, document) {
      const tenant = requireTenant(ctx);
      await db
        .transaction()
        .execute((trx) => indexDocuments(trx, tenant, registry, [document], config.searchMaxDocumentBytes));
    },
    async indexBulk(ctx, documents) {
      const tenant = requireTenant(ctx);
      return db.transaction().execute(async (trx) => {
        let count = 0;
        let batch: SearchDocument[] = [];
        for await (const document of documents) {
          batch.push(document);
          if (batch.length >= BULK_BATCH) {
            count += await indexDocuments(trx, tenant, registry, batch, config.searchMaxDocumentBytes);
            batch = [];
          }
        }
        count += await indexDocuments(trx, tenant, registry, batch, config.searchMaxDocumentBytes);
        return count;
      });
    },
    search: (ctx, query) => searcher.search(ctx, requireTenant(ctx), query),
    async suggest(ctx, query) {
      const tenant = requireTenant(ctx);
      const limit = query.limit ?? 8;
      // search-as-you-type: the last word as a prefix, titles first
      const target = await searcher.target(ctx, tenant, {
        q: query.q,
        prefix: true,
        ...(query.types && { types: query.types }),
      });
      if (target.groups.length === 0) return [];
      const rows = await pageOf(db, target, 'title', limit);
      const titles = rows.length >= limit ? rows : await pageOf(db, target, 'exact', limit);
      return [...new Set(titles.map((r) => r.title))].slice(0, limit);
    },
    async delete(ctx, type, id) {
      const tenant = requireTenant(ctx);
      await registry.forWrite(db, tenant, type);
      const result =
        await sql`delete from ${sql.id(tenant.schema, 'search_documents')} where type = ${type} and id = ${id}`.execute(
          db,
        );
      return Number(result.numAffectedRows ?? 0) > 0;
    },
    async deleteByType(ctx, type) {
      const tenant = requireTenant(ctx);
      const state = await registry.forWrite(db, tenant, type);
      const result =
        await sql`delete from ${sql.id(tenant.schema, 'search_documents')} where type = ${type}`.execute(db);
      const generations = state.building ? 2 : 1;
      return Math.round(Number(result.numAffectedRows ?? 0) / generations);
    },
    async deleteByQuery(ctx, query) {
      const tenant = requireTenant(ctx);
      const target = await searcher.target(ctx, tenant, query);
      if (target.groups.length === 0) return 0;
      return inTransaction(db, async (tx) => {
        let deleted = 0;
        for (;;) {
          const rows = await pageOf(tx.db, target, 'exact', BULK_BATCH - 1);
          if (rows.length === 0) return deleted;
          const docs = sql.id(tenant.schema, 'search_documents');
          await sql`delete from ${docs} where (type, id) in (${sql.join(rows.map((r) => sql`(${r.type}, ${r.id})`))})`.execute(
            tx.db,
          );
          deleted += rows.length;
        }
      });
    },
    reindex: (ctx, type) => reindexer.start(ctx, requireTenant(ctx), type),
  };
}
