import { sql } from 'kysely';
import type { RequestContext, TenantRef } from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import { tenantScope } from '../../infra/database/tenant-scope.js';
import { PlexicaError } from '../../infra/errors.js';
import type { SearchLanguage } from './config.js';
import type { SearchTenantTables } from './tables.js';

export const WEIGHTS = ['A', 'B', 'C', 'D'] as const;
export type Weight = (typeof WEIGHTS)[number];
/** `module:thing` (or deeper), lowercase: `crm:contact`, `billing:invoice`. */
export const TYPE_NAME = /^[a-z][a-z0-9-]*(:[a-z][a-z0-9-]*)+$/;

/**
 * What a type's documents hold beyond title, body and tags, and who may see them.
 * `title` is weight A, `tags` B and `body` D; `searchable` fields take their own weight.
 *
 * @example { type: 'crm:contact', searchable: { email: 'B', company: 'C' }, attributes: ['status'], permission: 'crm:contact:read' }
 */
export interface SearchTypeDefinition {
  type: string;
  /** Text fields matched by queries, with their weight (A ranks highest). */
  searchable?: Record<string, Weight>;
  /** Fields filters and facets may use (strings, numbers, booleans, or arrays of them). */
  attributes?: string[];
  /** Permission key a caller needs to see this type's documents, besides `search:document:read`. */
  permission?: string;
}

/** A type as one tenant sees it: its definition and the generation searches read. */
export interface TypeState {
  definition: SearchTypeDefinition;
  source: 'api' | 'code';
  generation: number;
  building: number | null;
  /** `core.plx_<language>`: the configuration the active generation was built with. */
  language: SearchLanguage;
}

export const regconfig = (language: string) => `core.plx_${language}`;

export function checkDefinition(definition: SearchTypeDefinition): void {
  const errors: { field: string; message: string }[] = [];
  if (!TYPE_NAME.test(definition.type) || definition.type.length > 100)
    errors.push({
      field: 'type',
      message: 'a type is module:thing in lowercase (crm:contact), at most 100 characters',
    });
  const searchable = Object.keys(definition.searchable ?? {});
  const names = [...searchable, ...(definition.attributes ?? [])];
  for (const name of names) {
    if (!/^[a-zA-Z][a-zA-Z0-9_]{0,62}$/.test(name))
      errors.push({ field: `fields.${name}`, message: 'a field name is letters, digits and _ (at most 63)' });
    if (['title', 'body', 'tags'].includes(name))
      errors.push({ field: `fields.${name}`, message: `${name} is a document member, not a field` });
  }
  if (new Set(names).size !== names.length)
    errors.push({ field: 'attributes', message: 'a field is either searchable or an attribute, once' });
  if (names.length > 64) errors.push({ field: 'fields', message: 'at most 64 fields per type' });
  if (errors.length > 0)
    throw new PlexicaError('PLX_VALIDATION', { detail: errors.map((e) => e.message).join('; '), errors });
}

/** Types registered in code (modules, plugin manifests) and per tenant over the API. */
export function createTypeRegistry(deps: { db: Executor; defaultLanguage: SearchLanguage }) {
  const code = new Map<string, SearchTypeDefinition>();
  const scope = (tenant: TenantRef) => tenantScope<SearchTenantTables>(deps.db, tenant);

  async function languageOf(db: Executor, tenant: TenantRef): Promise<SearchLanguage> {
    const row = await tenantScope<SearchTenantTables>(db, tenant)
      .selectFrom('search_settings')
      .select('language')
      .executeTakeFirst();
    return (row?.language as SearchLanguage | undefined) ?? deps.defaultLanguage;
  }

  return {
    languageOf,
    /** A module's type, the same in every tenant; registering one twice is an error. */
    register(definition: SearchTypeDefinition): void {
      checkDefinition(definition);
      if (code.has(definition.type)) throw new Error(`search type ${definition.type} is registered twice`);
      code.set(definition.type, definition);
    },

    /** Registers or replaces a tenant's own type. A type a module registered cannot be replaced. */
    async put(
      ctx: RequestContext,
      tenant: TenantRef,
      definition: SearchTypeDefinition,
    ): Promise<SearchTypeDefinition> {
      checkDefinition(definition);
      if (code.has(definition.type))
        throw new PlexicaError('PLX_SEARCH_TYPE_RESERVED', {
          detail: `${definition.type} is registered by a module and cannot be changed over the API`,
        });
      const language = await languageOf(deps.db, tenant);
      await scope(tenant)
        .insertInto('search_types')
        .values({ type: definition.type, source: 'api', definition: JSON.stringify(definition), language })
        .onConflict((oc) =>
          oc.column('type').doUpdateSet({ definition: JSON.stringify(definition), updated_at: sql`now()` }),
        )
        .execute();
      void ctx;
      return definition;
    },

    /** Every type the tenant can use (code types first), with their state. */
    async list(tenant: TenantRef): Promise<Map<string, TypeState>> {
      // one round trip for the types and the tenant's language (every search starts here)
      const rows = await sql<{
        type: string | null;
        definition: unknown;
        generation: number;
        building_generation: number | null;
        language: string;
        tenant_language: string | null;
      }>`select t.type, t.definition, t.generation, t.building_generation, t.language, s.language as tenant_language
        from ${sql.id(tenant.schema, 'search_settings')} s full join ${sql.id(tenant.schema, 'search_types')} t on true`.execute(
        deps.db,
      );
      const language =
        (rows.rows[0]?.tenant_language as SearchLanguage | null | undefined) ?? deps.defaultLanguage;
      const states = new Map<string, TypeState>();
      for (const [type, definition] of code)
        states.set(type, { definition, source: 'code', generation: 1, building: null, language });
      for (const row of rows.rows) {
        if (row.type === null) continue;
        const definition = code.get(row.type) ?? (row.definition as SearchTypeDefinition);
        states.set(row.type, {
          definition,
          source: code.has(row.type) ? 'code' : 'api',
          generation: row.generation,
          building: row.building_generation,
          language: row.language as SearchLanguage,
        });
      }
      return states;
    },

    /**
     * The state of `type` for a write: a code type gets its state row on first use,
     * in `db` (the writer's transaction). An unregistered type is PLX_SEARCH_TYPE_UNKNOWN.
     */
    async forWrite(db: Executor, tenant: TenantRef, type: string): Promise<TypeState> {
      const t = tenantScope<SearchTenantTables>(db, tenant);
      let row = await t.selectFrom('search_types').selectAll().where('type', '=', type).executeTakeFirst();
      const definition = code.get(type);
      if (!row && definition) {
        const language = await languageOf(db, tenant);
        await t
          .insertInto('search_types')
          .values({ type, source: 'code', definition: JSON.stringify(definition), language })
          .onConflict((oc) => oc.column('type').doNothing())
          .execute();
        row = await t.selectFrom('search_types').selectAll().where('type', '=', type).executeTakeFirst();
      }
      if (!row) throw unknownType(type, [...code.keys()]);
      return {
        definition: definition ?? (row.definition as SearchTypeDefinition),
        source: definition ? 'code' : 'api',
        generation: row.generation,
        building: row.building_generation,
        language: row.language as SearchLanguage,
      };
    },
  };
}
export type TypeRegistry = ReturnType<typeof createTypeRegistry>;

export const unknownType = (type: string, known: string[] = []) =>
  new PlexicaError('PLX_SEARCH_TYPE_UNKNOWN', {
    detail: `search type ${type} is not registered in this tenant`,
    errors: [
      { field: 'type', message: known.length > 0 ? `known: ${known.join(', ')}` : 'no types registered' },
    ],
  });
