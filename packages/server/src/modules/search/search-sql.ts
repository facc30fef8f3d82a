import { type RawBuilder, sql } from 'kysely';
import type { TenantRef } from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import { regconfig, type TypeState } from './types.js';

/** The types one query reads, with the generation and configuration of each. */
export interface Target {
  tenant: TenantRef;
  /** Types of one text search language (a query is compiled per language). */
  groups: {
    language: string;
    types: { type: string; generation: number }[];
    text: string;
    fuzzyText?: string | undefined;
  }[];
  /** `role:<r>`/`user:<id>` tokens of the caller; undefined = sees everything (super admin). */
  access: string[] | undefined;
  filters: Record<string, string[]>;
  /** The query has `-excluded` terms: a title match alone does not prove a match. */
  hasExclusions: boolean;
}

export interface Keyset {
  score: number;
  type: string;
  id: string;
}

export type Tier = 'title' | 'exact' | 'fuzzy';

const docsOf = (target: Target) => sql.id(target.tenant.schema, 'search_documents');
const tsquery = (language: string, text: string) =>
  sql`to_tsquery(${regconfig(language)}::regconfig, ${text})`;

function typeClause(types: { type: string; generation: number }[]): RawBuilder<unknown> {
  return sql`(d.type, d.generation) in (${sql.join(types.map((t) => sql`(${t.type}, ${t.generation}::int)`))})`;
}

/** Filters, access and per-language match condition; the score of each tier as title > body > fuzzy. */
function parts(target: Target, tier: Tier) {
  const common: RawBuilder<unknown>[] = [];
  if (target.access) common.push(sql`(d.access is null or d.access && ${target.access}::text[])`);
  for (const [name, values] of Object.entries(target.filters)) {
    // a field holding an array matches when any element is one of the values
    common.push(
      sql`(d.fields->>${name} = any(${values}::text[]) or exists (select 1 from jsonb_array_elements_text(case when jsonb_typeof(d.fields->${name}) = 'array' then d.fields->${name} else '[]' end) e where e = any(${values}::text[])))`,
    );
  }
  const matches: RawBuilder<unknown>[] = [];
  const scores: RawBuilder<unknown>[] = [];
  for (const group of target.groups) {
    const q = tsquery(group.language, group.text);
    const inGroup = typeClause(group.types);
    const titleScore = sql`1 + ts_rank(d.title_tsv, ${q}, 32)`;
    const exactScore = sql`case when d.title_tsv @@ ${q} then ${titleScore} else ts_rank(d.tsv, ${q}, 32) end`;
    if (tier === 'title') {
      matches.push(
        sql`(${inGroup} and d.title_tsv @@ ${q}${target.hasExclusions ? sql` and d.tsv @@ ${q}` : sql``})`,
      );
      scores.push(sql`when ${inGroup} then ${titleScore}`);
    } else if (tier === 'exact' || !group.fuzzyText) {
      matches.push(sql`(${inGroup} and d.tsv @@ ${q})`);
      scores.push(sql`when ${inGroup} then ${exactScore}`);
    } else {
      // corrections match titles only: the vocabulary is titles, fields and tags, and a title
      // GIN scan stays small where a corrected common word would match most bodies
      const qf = tsquery(group.language, group.fuzzyText);
      const fuzzyMatch = sql`d.title_tsv @@ ${qf}${target.hasExclusions ? sql` and d.tsv @@ ${qf}` : sql``}`;
      matches.push(sql`(${inGroup} and (d.tsv @@ ${q} or (${fuzzyMatch})))`);
      // fuzzy-only matches score below 0, under every exact match
      scores.push(
        sql`when ${inGroup} then case when d.tsv @@ ${q} then ${exactScore} else ts_rank(d.title_tsv, ${qf}, 32) - 1 end`,
      );
    }
  }
  const where = sql.join([sql`(${sql.join(matches, sql` or `)})`, ...common], sql` and `);
  const score =
    scores.length === 1
      ? sql`(case ${scores[0]} end)::float8`
      : sql`(case ${sql.join(scores, sql` `)} end)::float8`;
  return { where, score };
}

export interface HitRow {
  type: string;
  id: string;
  generation: number;
  title: string;
  fields: Record<string, unknown>;
  tags: string[];
  updated_at: Date;
  score: number;
  /** Every match of the tier (before the cursor), counted while ranking them; null for the title tier. */
  matched: number | null;
}

/**
 * One page of `tier`, best first, after `after`; `limit + 1` rows tell whether more follow.
 * Ranking scores every match anyway, so the exact and fuzzy tiers count them in the same pass.
 */
export async function pageOf(
  db: Executor,
  target: Target,
  tier: Tier,
  limit: number,
  after?: Keyset,
): Promise<HitRow[]> {
  const { where, score } = parts(target, tier);
  const keyset = after
    ? sql`where x.score < ${after.score}::float8 or (x.score = ${after.score}::float8 and (x.type > ${after.type} or (x.type = ${after.type} and x.id > ${after.id})))`
    : sql``;
  const result = await sql<HitRow>`select x.* from (
      select d.type, d.id, d.generation, d.title, d.fields, d.tags, d.updated_at, ${score} as score,
        ${tier === 'title' ? sql`null::int` : sql`(count(*) over ())::int`} as matched
      from ${docsOf(target)} d where ${where}
    ) x ${keyset}
    order by x.score desc, x.type, x.id limit ${limit + 1}`.execute(db);
  return result.rows;
}

/** Matches of `tier` counted up to `bound` (+1 tells "at least"). */
export async function countOf(db: Executor, target: Target, tier: Tier, bound: number): Promise<number> {
  const { where } = parts(target, tier);
  const result = await sql<{ n: number }>`select count(*)::int as n from (
      select 1 from ${docsOf(target)} d where ${where} limit ${bound + 1}) s`.execute(db);
  return result.rows[0]?.n ?? 0;
}

/** Value counts of declared attribute fields over every match the caller may see. */
export async function facetsOf(
  db: Executor,
  target: Target,
  tier: Tier,
  names: string[],
): Promise<Record<string, { value: string; count: number }[]>> {
  const facets: Record<string, { value: string; count: number }[]> = {};
  if (names.length === 0) return facets;
  const { where } = parts(target, tier);
  const result = await sql<{ name: string; value: string; count: number }>`
    with m as (select d.fields from ${docsOf(target)} d where ${where}),
    v as (
      select f.key as name, coalesce(e.value, f.value #>> '{}') as value
      from m cross join lateral jsonb_each(m.fields) f
      left join lateral jsonb_array_elements_text(case when jsonb_typeof(f.value) = 'array' then f.value else '[]' end) e on true
      where f.key = any(${names}::text[]) and (jsonb_typeof(f.value) <> 'array' or e.value is not null)
    ),
    c as (select name, value, count(*)::int as count, row_number() over (partition by name order by count(*) desc, value) as r
      from v group by name, value)
    select name, value, count from c where r <= 20 order by name, count desc, value`.execute(db);
  for (const name of names) facets[name] = [];
  for (const row of result.rows) facets[row.name]?.push({ value: row.value, count: row.count });
  return facets;
}

const START = '\uE000';
const STOP = '\uE001';
const escapeHtml = (s: string) =>
  s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');

/** Highlighted fragments (`<mark>`), HTML-escaped, for the rows of one page only. */
export async function snippetsOf(
  db: Executor,
  target: Target,
  rows: HitRow[],
  states: Map<string, TypeState>,
): Promise<Map<string, string>> {
  const snippets = new Map<string, string>();
  for (const group of target.groups) {
    const own = rows.filter((r) => group.types.some((t) => t.type === r.type));
    if (own.length === 0) continue;
    const q = tsquery(group.language, group.fuzzyText ?? group.text);
    const result = await sql<{ type: string; id: string; snippet: string }>`
      select d.type, d.id, ts_headline(${regconfig(group.language)}::regconfig, coalesce(nullif(d.body, ''), d.title), ${q},
        ${`StartSel=${START}, StopSel=${STOP}, MaxWords=30, MinWords=12, MaxFragments=2, FragmentDelimiter=" … "`}) as snippet
      from ${docsOf(target)} d
      where (d.type, d.generation, d.id) in (${sql.join(own.map((r) => sql`(${r.type}, ${r.generation}::int, ${r.id})`))})`.execute(
      db,
    );
    for (const row of result.rows)
      snippets.set(
        `${row.type}\u0000${row.id}`,
        escapeHtml(row.snippet).replaceAll(START, '<mark>').replaceAll(STOP, '</mark>'),
      );
  }
  void states;
  return snippets;
}

/** Vocabulary words near `word` by trigram distance (GiST k-nearest), checked by the caller. */
export async function nearWords(db: Executor, tenant: TenantRef, word: string): Promise<string[]> {
  const result = await sql<{ word: string }>`select word from ${sql.id(tenant.schema, 'search_words')}
    order by word <-> ${word} limit 40`.execute(db);
  return result.rows.map((r) => r.word);
}
