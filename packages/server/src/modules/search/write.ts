import { sql } from 'kysely';
import type { TenantRef } from '../../context.js';
import type { Executor } from '../../infra/database/index.js';
import { PlexicaError } from '../../infra/errors.js';
import { regconfig, type TypeRegistry, type TypeState } from './types.js';

export type FieldValue = string | number | boolean | (string | number | boolean)[];

/**
 * A searchable document. Its identity is `(type, id)`: `crm:contact` 42 and
 * `billing:invoice` 42 are two documents (seed 000 edge case 7).
 */
export interface SearchDocument {
  type: string;
  id: string;
  title: string;
  body?: string;
  /** Only fields the type declares (searchable or attribute). */
  fields?: Record<string, FieldValue>;
  tags?: string[];
  /** Who may see it; absent = everyone who may read the type. */
  access?: { roles?: string[]; users?: string[] };
  /** An older `updatedAt` never replaces a newer one (default: now). */
  updatedAt?: string;
}

/** A document checked against its type, as the insert statement takes it. */
interface Row {
  type: string;
  id: string;
  title: string;
  body: string | null;
  fields: Record<string, FieldValue>;
  tags: string[];
  access: string[] | null;
  updated_at: string;
  /** Searchable text by weight; the title and tags are added in SQL. */
  a: string;
  b: string;
  c: string;
}

const bad = (doc: { type?: unknown; id?: unknown }, field: string, message: string) =>
  new PlexicaError('PLX_VALIDATION', {
    detail: `document ${String(doc.type)}/${String(doc.id)}: ${message}`,
    errors: [{ field, message }],
  });

const isScalar = (v: unknown) => typeof v === 'string' || typeof v === 'boolean' || Number.isFinite(v);
// PostgreSQL text cannot hold NUL; lone surrogates would not survive UTF-8
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const hasBadCharacters = (s: string) => s.includes('\u0000') || LONE_SURROGATE.test(s);

/** Checks `doc` against its type and the size limit; throws a precise 400, never a database error. */
export function toRow(doc: SearchDocument, state: TypeState, maxBytes: number): Row {
  const bytes = Buffer.byteLength(JSON.stringify(doc));
  if (bytes > maxBytes)
    throw new PlexicaError('PLX_SEARCH_DOCUMENT_TOO_LARGE', {
      detail: `document ${doc.type}/${doc.id} is ${bytes} bytes; the limit is ${maxBytes}`,
    });
  if (typeof doc.id !== 'string' || doc.id.length < 1 || doc.id.length > 200)
    throw bad(doc, 'id', 'id is 1 to 200 characters');
  if (typeof doc.title !== 'string' || doc.title.trim() === '' || doc.title.length > 2000)
    throw bad(doc, 'title', 'title is 1 to 2000 characters, not only spaces');
  if (doc.body !== undefined && typeof doc.body !== 'string') throw bad(doc, 'body', 'body is a string');
  const texts = [doc.id, doc.title, doc.body ?? '', ...(doc.tags ?? [])];
  const searchable = state.definition.searchable ?? {};
  const attributes = new Set(state.definition.attributes ?? []);
  const weighted: Record<'A' | 'B' | 'C' | 'D', string[]> = { A: [], B: [], C: [], D: [] };
  for (const [name, value] of Object.entries(doc.fields ?? {})) {
    const weight = searchable[name];
    if (!weight && !attributes.has(name))
      throw new PlexicaError('PLX_SEARCH_FIELD_UNDECLARED', {
        detail: `field ${name} is not declared by type ${doc.type}`,
        errors: [{ field: `fields.${name}`, message: 'declare it in the type (searchable or attributes)' }],
      });
    const values = Array.isArray(value) ? value : [value];
    if (!values.every(isScalar) || values.length > 100)
      throw bad(doc, `fields.${name}`, 'a field is a string, number or boolean, or an array of at most 100');
    for (const v of values) if (typeof v === 'string') texts.push(v);
    if (weight) weighted[weight].push(values.map(String).join(' '));
  }
  const tags = doc.tags ?? [];
  if (
    !Array.isArray(tags) ||
    tags.length > 100 ||
    !tags.every((t) => typeof t === 'string' && t.length <= 200)
  )
    throw bad(doc, 'tags', 'at most 100 tags of at most 200 characters');
  if (texts.some(hasBadCharacters)) throw bad(doc, 'body', 'text holds NUL or an unpaired surrogate');
  const access = doc.access
    ? [
        ...(doc.access.roles ?? []).map((r) => `role:${r}`),
        ...(doc.access.users ?? []).map((u) => `user:${u}`),
      ]
    : null;
  let updatedAt = new Date().toISOString();
  if (doc.updatedAt !== undefined) {
    const t = Date.parse(doc.updatedAt);
    if (!Number.isFinite(t)) throw bad(doc, 'updatedAt', 'updatedAt is an ISO 8601 date-time');
    updatedAt = new Date(t).toISOString();
  }
  return {
    type: doc.type,
    id: doc.id,
    title: doc.title,
    body: doc.body ?? null,
    fields: doc.fields ?? {},
    tags,
    access,
    updated_at: updatedAt,
    a: weighted.A.join(' '),
    b: [...tags, ...weighted.B].join(' '),
    c: [...weighted.C, ...weighted.D].join(' '),
  };
}

/** SQLSTATE classes that mean "this document cannot be indexed" (tsvector too long, bad data). */
const DOCUMENT_FAULTS = /^(22|54)/;

/**
 * Writes checked rows of one type into each generation searches or a reindex read,
 * in `db` (the caller's transaction). A newer stored `updated_at` wins. A failure is
 * thrown with the documents and the reason: never caught and called success.
 */
export async function writeRows(
  db: Executor,
  tenant: TenantRef,
  state: TypeState,
  rows: Row[],
  buildingLanguage: string,
): Promise<void> {
  if (rows.length === 0) return;
  // one statement cannot update a row twice: the newest of a batch's duplicates wins
  const byKey = new Map<string, Row>();
  for (const row of rows) {
    const seen = byKey.get(row.id);
    if (!seen || seen.updated_at <= row.updated_at) byKey.set(row.id, row);
  }
  const unique = [...byKey.values()];
  const generations = [state.generation, ...(state.building ? [state.building] : [])];
  const configs = [regconfig(state.language), ...(state.building ? [regconfig(buildingLanguage)] : [])];
  const docs = sql.id(tenant.schema, 'search_documents');
  try {
    await sql`insert into ${docs} as d (type, id, generation, title, body, fields, tags, access, updated_at, title_tsv, tsv)
      select x.type, x.id, g.generation, x.title, x.body, x.fields, x.tags, x.access, x.updated_at,
        to_tsvector(g.cfg::regconfig, x.title),
        setweight(to_tsvector(g.cfg::regconfig, x.title || ' ' || x.a), 'A')
          || setweight(to_tsvector(g.cfg::regconfig, x.b), 'B')
          || setweight(to_tsvector(g.cfg::regconfig, x.c), 'C')
          || setweight(to_tsvector(g.cfg::regconfig, coalesce(x.body, '')), 'D')
      from jsonb_to_recordset(${JSON.stringify(unique)}::jsonb) as x(type text, id text, title text, body text,
        fields jsonb, tags text[], access text[], updated_at timestamptz, a text, b text, c text)
      cross join unnest(${generations}::int[], ${configs}::text[]) as g(generation, cfg)
      on conflict (type, generation, id) do update set title = excluded.title, body = excluded.body,
        fields = excluded.fields, tags = excluded.tags, access = excluded.access, updated_at = excluded.updated_at,
        title_tsv = excluded.title_tsv, tsv = excluded.tsv
      where d.updated_at <= excluded.updated_at`.execute(db);
    // the tenant's vocabulary for typo tolerance: titles, searchable fields and tags, not bodies
    await sql`insert into ${sql.id(tenant.schema, 'search_words')} (word)
      select distinct w from jsonb_to_recordset(${JSON.stringify(unique.map((r) => ({ t: `${r.title} ${r.a} ${r.b}` })))}::jsonb) as x(t text),
        unnest(tsvector_to_array(to_tsvector(${regconfig(state.language)}::regconfig, x.t))) as w
      where length(w) between 4 and 64
      on conflict do nothing`.execute(db);
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    const which =
      unique.length === 1
        ? `document ${state.definition.type}/${unique[0]?.id}`
        : `${unique.length} documents of ${state.definition.type} (${unique[0]?.id} …)`;
    if (DOCUMENT_FAULTS.test(code))
      throw new PlexicaError('PLX_SEARCH_INDEX_FAILED', {
        detail: `${which} not indexed: ${(err as Error).message}`,
        cause: err,
      });
    throw err;
  }
}

/** Checks and writes documents of any types in one transaction: all are indexed, or none. */
export async function indexDocuments(
  db: Executor,
  tenant: TenantRef,
  registry: TypeRegistry,
  docs: SearchDocument[],
  maxBytes: number,
): Promise<number> {
  const language = await registry.languageOf(db, tenant);
  const states = new Map<string, TypeState>();
  const byType = new Map<string, Row[]>();
  for (const doc of docs) {
    if (typeof doc?.type !== 'string') throw bad(doc ?? {}, 'type', 'type is required');
    let state = states.get(doc.type);
    if (!state) {
      state = await registry.forWrite(db, tenant, doc.type);
      states.set(doc.type, state);
    }
    const rows = byType.get(doc.type) ?? [];
    rows.push(toRow(doc, state, maxBytes));
    byType.set(doc.type, rows);
  }
  for (const [type, rows] of byType) {
    const state = states.get(type);
    if (state) await writeRows(db, tenant, state, rows, language);
  }
  return docs.length;
}
