import { sql } from 'kysely';
import { type RequestContext, toTenantRef } from '../packages/server/src/context.js';
import type { SearchDocument } from '../packages/server/src/modules/search/index.js';
import { type Engine, percentile, record, stamp, startApp, table } from './lib.js';

const SIZES = (process.env.PLEXICA_BENCH_SEARCH_SIZES ?? '10000,100000').split(',').map(Number);
const ENGINES_HERE = (process.env.PLEXICA_BENCH_SEARCH_ENGINES ?? 'postgres,pglite').split(',') as Engine[];
const QUERIES_PER_KIND = Number(process.env.PLEXICA_BENCH_SEARCH_QUERIES ?? 40);

/** mulberry32: the same documents and queries on every run. */
function rng(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const FIRST =
  'john mary peter elodie ahmed li wei olga carlos fatima james sofia liam emma noah ava lucas mia ethan chloe omar nina ivan sara paul anna leo zoe hugo ines'.split(
    ' ',
  );
const LAST =
  'smith johnson dupre garcia mueller rossi kowalski nguyen tanaka silva brown martin bernard dubois moreau laurent lefevre petit schmidt weber wagner becker fischer costa santos'.split(
    ' ',
  );
const SYLLABLES =
  'ka lo mi ne ra to su ve di pa zo ri an el or us ti ma be co fu ga he ja ku ly mo ni pe qu sa te vu wo xe yo'.split(
    ' ',
  );

/** A vocabulary of pronounceable words and a Zipf (s = 1.07) sampler over it. */
function corpus(seed: number) {
  const random = rng(seed);
  const words = new Set<string>();
  while (words.size < 30_000) {
    const n = 2 + Math.floor(random() * 3);
    words.add(Array.from({ length: n }, () => SYLLABLES[Math.floor(random() * SYLLABLES.length)]).join(''));
  }
  const vocabulary = [...words];
  const cdf: number[] = [];
  let sum = 0;
  for (let i = 0; i < vocabulary.length; i++) {
    sum += 1 / (i + 1) ** 1.07;
    cdf.push(sum);
  }
  const zipf = () => {
    const x = random() * sum;
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cdf[mid] ?? 0) < x) lo = mid + 1;
      else hi = mid;
    }
    return vocabulary[lo] ?? '';
  };
  const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)] as T;
  function* documents(count: number): Generator<SearchDocument> {
    for (let i = 0; i < count; i++) {
      const first = pick(FIRST);
      const last = pick(LAST);
      const company = `${zipf()} ${pick(['inc', 'gmbh', 'sa', 'ltd'])}`;
      const words = 50 + Math.floor(random() * 451);
      const person = random() < 0.5;
      yield {
        type: person ? 'crm:contact' : 'crm:note',
        id: String(i),
        title: person ? `${first} ${last}` : `${zipf()} ${zipf()} ${zipf()}`,
        body: Array.from({ length: words }, zipf).join(' '),
        fields: person
          ? { email: `${first}.${last}${i}@${company.split(' ')[0]}.test`, company }
          : { company },
      };
    }
  }
  return { vocabulary, zipf, random, pick, documents };
}

type Kind = 'common word' | 'two words' | 'prefix 1-3' | 'phrase' | 'rare word' | 'typo';
function queries(c: ReturnType<typeof corpus>): [Kind, string][] {
  const out: [Kind, string][] = [];
  const typo = (w: string) => `${w[1]}${w[0]}${w.slice(2)}`;
  for (let i = 0; i < QUERIES_PER_KIND; i++) {
    out.push(['common word', c.vocabulary[i % 10] ?? '']);
    out.push(['two words', `${c.vocabulary[i % 20]} ${c.vocabulary[100 + i * 7]}`]);
    const w = c.pick([...FIRST, ...c.vocabulary.slice(0, 50)]);
    out.push(['prefix 1-3', w.slice(0, 1 + (i % 3))]);
    out.push(['phrase', `"${c.vocabulary[i % 30]} ${c.vocabulary[(i * 3) % 30]}"`]);
    out.push(['rare word', c.vocabulary[3000 + i * 97] ?? '']);
    out.push(['typo', typo(c.pick(LAST.filter((l) => l.length >= 5)))]);
  }
  return out;
}

/** P95 per query kind through SearchService, next to the same query as one plain SQL statement. */
export async function search(): Promise<void> {
  const latencyRows: (string | number)[][] = [];
  const bulkRows: (string | number)[][] = [];
  const qualityRows: (string | number)[][] = [];
  for (const engine of ENGINES_HERE) {
    for (const size of SIZES) {
      const { app, close } = await startApp(engine, { databasePoolSize: 4 });
      try {
        const tenant = toTenantRef(
          await app.services.tenants.create({ slug: `bench-search-${size}`, name: 'Bench' }),
        );
        const ctx: RequestContext = { traceId: 'bench', principal: null, tenant };
        const service = app.services.search;
        await service.putType(ctx, { type: 'crm:contact', searchable: { email: 'B', company: 'C' } });
        await service.putType(ctx, { type: 'crm:note', searchable: { company: 'C' } });
        const c = corpus(14);
        const started = performance.now();
        const indexed = await service.indexBulk(ctx, c.documents(size));
        const seconds = (performance.now() - started) / 1000;
        const db = app.database.db;
        await sql`analyze ${sql.id(tenant.schema, 'search_documents')}`.execute(db);
        const bytes = (
          await sql<{
            n: number;
          }>`select pg_total_relation_size(${`${tenant.schema}.search_documents`}::regclass)::bigint as n`.execute(
            db,
          )
        ).rows[0]?.n;
        // reference: the naive table (skipped with PLEXICA_BENCH_SEARCH_BULK_REFERENCE=0 for big runs) (one tsvector of title and body, one GIN index), same rows, same batches
        const withReference = process.env.PLEXICA_BENCH_SEARCH_BULK_REFERENCE !== '0';
        if (withReference)
          await sql`create table bench_plain (id text primary key, tsv tsvector not null)`.execute(db);
        if (withReference) await sql`create index bench_plain_tsv on bench_plain using gin (tsv)`.execute(db);
        const plainStarted = performance.now();
        let batch: SearchDocument[] = [];
        const flush = async () => {
          await sql`insert into bench_plain select x.type || '/' || x.id, to_tsvector('simple', x.title || ' ' || x.body)
            from jsonb_to_recordset(${JSON.stringify(batch)}::jsonb) as x(type text, id text, title text, body text)`.execute(
            db,
          );
          batch = [];
        };
        for (const doc of withReference ? corpus(14).documents(size) : []) {
          batch.push(doc);
          if (batch.length === 1000) await flush();
        }
        if (withReference && batch.length > 0) await flush();
        const plainRate = size / ((performance.now() - plainStarted) / 1000);
        const rate = indexed / seconds;
        bulkRows.push([
          engine,
          size,
          Math.round(rate),
          withReference ? Math.round(plainRate) : '—',
          withReference ? (rate / plainRate).toFixed(2) : '—',
          Math.round(Number(bytes) / size),
        ]);

        const docs = sql.id(tenant.schema, 'search_documents');
        const byKind = new Map<
          Kind,
          { ours: number[]; plain: number[]; overlapTiers: number[]; overlapPlain: number[] }
        >();
        const mix = queries(c);
        for (const [, q] of mix.slice(0, 12)) await service.search(ctx, { q }); // warm-up
        for (const [kind, q] of mix) {
          const entry = byKind.get(kind) ?? { ours: [], plain: [], overlapTiers: [], overlapPlain: [] };
          byKind.set(kind, entry);
          let t0 = performance.now();
          // the last word is a prefix only where the kind says so: the reference runs the same query
          const ours = await service.search(ctx, { q, limit: 20, prefix: kind === 'prefix 1-3' });
          entry.ours.push(performance.now() - t0);
          // the reference: the naive statement (GIN match, ORDER BY ts_rank) with no Plexica in front
          const parsed = q.startsWith('"')
            ? q.slice(1, -1).split(' ').join(' <-> ')
            : kind === 'prefix 1-3'
              ? `${q}:*`
              : kind === 'typo'
                ? // the reference of a typo is the word spelled right: what the correction finds
                  `${q[1]}${q[0]}${q.slice(2)}`
                : q.split(' ').join(' & ');
          t0 = performance.now();
          const plain = await sql<{ type: string; id: string }>`select type, id from ${docs}
            where tsv @@ to_tsquery('core.plx_simple', ${parsed}) order by ts_rank(tsv, to_tsquery('core.plx_simple', ${parsed})) desc limit 20`.execute(
            db,
          );
          entry.plain.push(performance.now() - t0);
          // tiering must give the page full ranking gives: rank every exact match with our own score
          const key = (r: { type: string; id: string }) => `${r.type}/${r.id}`;
          const top = new Set(ours.items.slice(0, 10).map(key));
          const overlap = (list: { type: string; id: string }[]) => {
            const ten = list.slice(0, 10);
            return ten.length === 0
              ? 1
              : ten.filter((r) => top.has(key(r))).length / Math.min(10, ten.length);
          };
          if (kind !== 'typo') {
            const full = await sql<{ type: string; id: string }>`select type, id from ${docs} d
              where tsv @@ to_tsquery('core.plx_simple', ${parsed})
              order by case when title_tsv @@ to_tsquery('core.plx_simple', ${parsed}) then 1 + ts_rank(title_tsv, to_tsquery('core.plx_simple', ${parsed}), 32) else ts_rank(tsv, to_tsquery('core.plx_simple', ${parsed}), 32) end desc, type, id limit 10`.execute(
              db,
            );
            entry.overlapTiers.push(overlap(full.rows));
            entry.overlapPlain.push(overlap(plain.rows));
          }
        }
        for (const [kind, e] of byKind) {
          const ours = percentile(
            [...e.ours].sort((x, y) => x - y),
            95,
          );
          const plain = percentile(
            [...e.plain].sort((x, y) => x - y),
            95,
          );
          latencyRows.push([
            engine,
            size,
            kind,
            ours.toFixed(1),
            plain.toFixed(1),
            (ours / plain).toFixed(2),
          ]);
          const mean = (xs: number[]) =>
            xs.length ? (xs.reduce((s, x) => s + x, 0) / xs.length).toFixed(2) : '—';
          qualityRows.push([engine, size, kind, mean(e.overlapTiers), mean(e.overlapPlain)]);
        }
        console.log(`${engine} ${size}: indexed at ${Math.round(indexed / seconds)}/s`);
      } finally {
        await close();
      }
    }
  }
  await record(
    'search',
    `## Search (\`bench/search.ts\`)

${stamp()} · machine "2 cores shared, node-svc" · 2026-12-01

Generated tenants (seeded: names, emails, companies, 50–500 word bodies, Zipf s = 1.07 over 30,000 words), half contacts, half notes; ${QUERIES_PER_KIND} queries per kind, 20 results, snippets on, through \`SearchService.search\` in-process (no HTTP). Reference: the naive statement on the same table in the same run (GIN match + \`ORDER BY ts_rank\`, no snippets, no count, no permissions); for a typo, that statement on the word spelled right.

### P95 latency per query kind (ms)
${table(['engine', 'docs', 'query', 'ours P95', 'plain SQL P95', 'ratio'], latencyRows)}

### Bulk indexing (one indexBulk call, one transaction; reference: plain INSERT … to_tsvector('simple', title || body) into a table with one GIN index, batches of 1,000)
${table(['engine', 'docs', 'ours docs/s', 'plain insert docs/s', 'ratio', 'bytes per doc (table + indexes)'], bulkRows)}

### Quality: top-10 overlap
Tiered ranking vs the same score over every exact match (1.00 = tiers lost nothing), and vs plain \`ts_rank\` order.
${table(['engine', 'docs', 'query', 'tiers vs full', 'ours vs plain ts_rank'], qualityRows)}
`,
  );
}
