import { createHash } from 'node:crypto';
import type { RequestContext, TenantRef } from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import { PlexicaError } from '../../infra/errors.js';
import {
  correctableWords,
  editDistance,
  type ParsedQuery,
  parseQuery,
  rewriteQuery,
  toTsquery,
} from './query.js';
import {
  countOf,
  facetsOf,
  type HitRow,
  type Keyset,
  nearWords,
  pageOf,
  snippetsOf,
  type Target,
  type Tier,
} from './search-sql.js';
import { type TypeRegistry, type TypeState, unknownType } from './types.js';

export type FilterValue = string | number | boolean | (string | number | boolean)[];

export interface SearchQuery {
  /** Words, `"phrases"`, `-excluded`, `a OR b`; the last word matches as a prefix. */
  q: string;
  /** Only these types (FR-014); default every type the caller may read. */
  types?: string[];
  /** Declared attribute fields: a value or any of several. */
  filters?: Record<string, FilterValue>;
  /** Declared attribute fields to count values of over all matches. */
  facets?: string[];
  /** 1–100 (default 20). */
  limit?: number;
  cursor?: string;
  /** `type`: the best `limit` of each type (seed 000 §9); default one ranked list. */
  groupBy?: 'type';
  /** Search-as-you-type: the last word is a prefix (default true). */
  prefix?: boolean;
  /** Typo tolerance when exact matches do not fill the page (default true). */
  typo?: boolean;
  /** `<mark>` snippets (default true). */
  highlight?: boolean;
}

export interface SearchHit {
  type: string;
  id: string;
  title: string;
  snippet?: string;
  score: number;
  /** `fuzzy`: found through a typo correction; always after every exact match. */
  match: 'exact' | 'fuzzy';
  fields: Record<string, unknown>;
  tags: string[];
  updatedAt: string;
}

export interface SearchResult {
  items: SearchHit[];
  /** Exact up to the count limit; then `totalExact` is false and this is "at least". */
  total: number;
  totalExact: boolean;
  nextCursor: string | null;
  facets?: Record<string, { value: string; count: number }[]>;
  /** The query with misspelled words corrected, when it found nothing and the correction finds something. */
  didYouMean?: string;
  groups?: { type: string; total: number; totalExact: boolean; items: SearchHit[] }[];
}

const cursorError = (detail: string) =>
  new PlexicaError('PLX_SEARCH_CURSOR_INVALID', { detail, errors: [{ field: 'cursor', message: detail }] });

const mayRead = (ctx: RequestContext, state: TypeState) =>
  !state.definition.permission ||
  ctx.principal === null ||
  ctx.principal.isSuperAdmin ||
  ctx.principal.permissions.has(state.definition.permission);

/** The types to search: those asked for (each registered and readable) or every readable one declaring the filters. */
function chooseTypes(
  ctx: RequestContext,
  states: Map<string, TypeState>,
  query: SearchQuery,
): [string, TypeState][] {
  const filterNames = [...Object.keys(query.filters ?? {}), ...(query.facets ?? [])];
  const declares = (state: TypeState) => filterNames.every((n) => state.definition.attributes?.includes(n));
  if (query.types && query.types.length > 0) {
    return [...new Set(query.types)].map((type) => {
      const state = states.get(type);
      if (!state) throw unknownType(type, [...states.keys()]);
      if (!mayRead(ctx, state))
        throw new PlexicaError('PLX_PERMISSION_DENIED', {
          detail: `searching ${type} needs ${state.definition.permission}`,
        });
      const missing = filterNames.find((n) => !state.definition.attributes?.includes(n));
      if (missing) throw undeclaredFilter(missing, type);
      return [type, state];
    });
  }
  const readable = [...states].filter(([, s]) => mayRead(ctx, s));
  const chosen = readable.filter(([, s]) => declares(s));
  if (filterNames.length > 0 && chosen.length === 0) throw undeclaredFilter(filterNames[0] ?? '', 'any type');
  return chosen;
}

const undeclaredFilter = (name: string, type: string) =>
  new PlexicaError('PLX_SEARCH_FILTER_INVALID', {
    detail: `${name} is not an attribute field of ${type}`,
    errors: [{ field: `filters.${name}`, message: 'filter and facet on attribute fields the type declares' }],
  });

function accessTokens(ctx: RequestContext): string[] | undefined {
  const p = ctx.principal;
  if (!p || p.isSuperAdmin) return undefined;
  return [...p.roles.map((r) => `role:${r}`), ...(p.userId ? [`user:${p.userId}`] : []), `user:${p.id}`];
}

const hashOf = (tenant: TenantRef, query: SearchQuery) =>
  createHash('sha256')
    .update(
      JSON.stringify([
        tenant.id,
        query.q,
        [...(query.types ?? [])].sort(),
        query.filters ?? {},
        query.prefix,
        query.typo,
      ]),
    )
    .digest('base64url')
    .slice(0, 16);

function decodeCursor(cursor: string, hash: string): Keyset {
  let parsed: { h?: unknown; s?: unknown; t?: unknown; i?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw cursorError('the cursor is not one this server made');
  }
  if (parsed.h !== hash) throw cursorError('the cursor belongs to another query or another tenant');
  if (typeof parsed.s !== 'number' || typeof parsed.t !== 'string' || typeof parsed.i !== 'string')
    throw cursorError('the cursor is not one this server made');
  return { score: parsed.s, type: parsed.t, id: parsed.i };
}
const encodeCursor = (hash: string, row: HitRow) =>
  Buffer.from(JSON.stringify({ h: hash, s: row.score, t: row.type, i: row.id })).toString('base64url');

/**
 * Runs a search in tiers, so a common word or a short prefix does not rank every
 * match: when titles alone fill the page, only title matches are ranked (a title
 * match scores ≥ 1, above every body-only match, so the page is the one full ranking
 * gives); else every exact match; typo corrections only when exact matches do not
 * fill the page, scored below 0.
 */
export function createSearcher(deps: { db: Executor; registry: TypeRegistry; countLimit: number }) {
  const { db, registry } = deps;

  async function expansions(tenant: TenantRef, parsed: ParsedQuery): Promise<Map<string, string[]>> {
    const found = new Map<string, string[]>();
    for (const word of new Set(correctableWords(parsed))) {
      const max = word.length >= 8 ? 2 : 1;
      const near = (await nearWords(db, tenant, word))
        .filter((w) => w !== word && editDistance(w, word) <= max)
        .slice(0, 4);
      if (near.length > 0) found.set(word, near);
    }
    return found;
  }

  async function run(
    ctx: RequestContext,
    tenant: TenantRef,
    query: SearchQuery,
    chosen: [string, TypeState][],
    parsed: ParsedQuery,
  ) {
    const limit = query.limit ?? 20;
    const hash = hashOf(tenant, query);
    const after = query.cursor ? decodeCursor(query.cursor, hash) : undefined;
    const target = makeTarget(ctx, tenant, query, chosen, parsed);
    const empty = { items: [], total: 0, totalExact: true, nextCursor: null };
    if (target.groups.length === 0) return { result: empty as SearchResult, target };

    let tier: Tier = 'title';
    let rows: HitRow[] = [];
    if (!after || after.score >= 1) rows = await pageOf(db, target, 'title', limit, after);
    if (rows.length <= limit) {
      tier = 'exact';
      rows = await pageOf(db, target, 'exact', limit, after);
    }
    let didYouMean: string | undefined;
    if (rows.length <= limit && query.typo !== false) {
      const near = await expansions(tenant, parsed);
      if (near.size > 0) {
        const fuzzyText = toTsquery(parsed, near);
        for (const group of target.groups) group.fuzzyText = fuzzyText;
        tier = 'fuzzy';
        rows = await pageOf(db, target, 'fuzzy', limit, after);
        if (!after && !rows.some((r) => r.score >= 0))
          didYouMean = await suggestion(target, query.q, parsed, near);
      }
    }
    const more = rows.length > limit;
    const page = rows.slice(0, limit);
    // the count of the widest tier, bounded; title matches alone may already pass the bound
    let total =
      tier === 'title' ? await countOf(db, target, 'title', deps.countLimit) : (rows[0]?.matched ?? -1);
    if (total < 0 || (tier === 'title' && total <= deps.countLimit))
      total = await countOf(db, target, tier === 'title' ? 'exact' : tier, deps.countLimit);
    const snippets =
      query.highlight === false
        ? new Map<string, string>()
        : await snippetsOf(db, target, page, new Map(chosen));
    const items = page.map((row): SearchHit => {
      const snippet = snippets.get(`${row.type}\u0000${row.id}`);
      return {
        type: row.type,
        id: row.id,
        title: row.title,
        ...(snippet !== undefined && { snippet }),
        score: row.score,
        match: row.score < 0 ? 'fuzzy' : 'exact',
        fields: row.fields,
        tags: row.tags,
        updatedAt: row.updated_at.toISOString(),
      };
    });
    const result: SearchResult = {
      items,
      total: Math.min(total, deps.countLimit),
      totalExact: total <= deps.countLimit,
      nextCursor: more && page.length > 0 ? encodeCursor(hash, page[page.length - 1] as HitRow) : null,
      ...(didYouMean !== undefined && { didYouMean }),
    };
    if (query.facets && query.facets.length > 0)
      result.facets = await facetsOf(db, target, tier === 'title' ? 'exact' : tier, query.facets);
    return { result, target };
  }

  /** The best correction of each word, offered only when it finds something the caller may see. */
  async function suggestion(target: Target, q: string, parsed: ParsedQuery, near: Map<string, string[]>) {
    const corrections = new Map<string, string>();
    for (const [word, candidates] of near) {
      const best = [...candidates].sort((a, b) => editDistance(a, word) - editDistance(b, word))[0];
      if (best) corrections.set(word, best);
    }
    const text = toTsquery(dropOriginals(parsed, corrections));
    const fixed: Target = {
      ...target,
      groups: target.groups.map((g) => ({ ...g, text, fuzzyText: undefined })),
    };
    return (await countOf(db, fixed, 'exact', 1)) > 0 ? rewriteQuery(q, corrections) : undefined;
  }

  return {
    async search(ctx: RequestContext, tenant: TenantRef, query: SearchQuery): Promise<SearchResult> {
      const parsed = parseQuery(query.q, { prefix: query.prefix !== false });
      const states = await registry.list(tenant);
      const chosen = chooseTypes(ctx, states, query);
      if (query.groupBy !== 'type') return (await run(ctx, tenant, query, chosen, parsed)).result;
      if (query.cursor) throw cursorError('grouped results have no cursor: page one type with types=[type]');
      const groups: NonNullable<SearchResult['groups']> = [];
      for (const entry of chosen) {
        const { result } = await run(
          ctx,
          tenant,
          { ...query, types: [entry[0]], facets: [] },
          [entry],
          parsed,
        );
        if (result.items.length > 0)
          groups.push({
            type: entry[0],
            total: result.total,
            totalExact: result.totalExact,
            items: result.items,
          });
      }
      groups.sort((a, b) => (b.items[0]?.score ?? 0) - (a.items[0]?.score ?? 0));
      const total = groups.reduce((n, g) => n + g.total, 0);
      return { items: [], total, totalExact: groups.every((g) => g.totalExact), nextCursor: null, groups };
    },
    /** What a query matches exactly (no prefix, no typos), for deleteByQuery. */
    async target(ctx: RequestContext, tenant: TenantRef, query: SearchQuery): Promise<Target> {
      const parsed = parseQuery(query.q, { prefix: query.prefix === true });
      return makeTarget(ctx, tenant, query, chooseTypes(ctx, await registry.list(tenant), query), parsed);
    },
  };
}

function makeTarget(
  ctx: RequestContext,
  tenant: TenantRef,
  query: SearchQuery,
  chosen: [string, TypeState][],
  parsed: ParsedQuery,
): Target {
  const text = toTsquery(parsed);
  const byLanguage = new Map<string, { type: string; generation: number }[]>();
  for (const [type, state] of chosen) {
    const list = byLanguage.get(state.language) ?? [];
    list.push({ type, generation: state.generation });
    byLanguage.set(state.language, list);
  }
  const filters: Record<string, string[]> = {};
  for (const [name, value] of Object.entries(query.filters ?? {}))
    filters[name] = (Array.isArray(value) ? value : [value]).map(String);
  return {
    tenant,
    groups: [...byLanguage].map(([language, types]) => ({ language, types, text })),
    access: accessTokens(ctx),
    filters,
    hasExclusions: parsed.excluded.length > 0,
  };
}

/** The parsed query with corrected words standing alone (the correction replaces the word). */
function dropOriginals(parsed: ParsedQuery, corrections: Map<string, string>): ParsedQuery {
  const swap = (t: ParsedQuery['excluded'][number]) =>
    !t.phrase && corrections.has(t.words[0] ?? '')
      ? { ...t, words: [corrections.get(t.words[0] ?? '') ?? ''], prefix: false }
      : t;
  return { groups: parsed.groups.map((g) => g.map(swap)), excluded: parsed.excluded };
}
