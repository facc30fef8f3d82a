import { PlexicaError } from '../../infra/errors.js';

/** Longest query text accepted, in characters. */
export const MAX_QUERY_LENGTH = 256;
const MAX_TERMS = 32;
/** tsquery operators and characters that only ever appear in injection attempts here. */
const FORBIDDEN = /[&|!():*\\;<>{}[\]`]|--|\/\*/;
const WORD = /[\p{L}\p{N}]+/gu;

/** One searchable unit: a word (maybe a prefix) or a quoted phrase of words. */
export interface Term {
  words: string[];
  phrase: boolean;
  /** Search-as-you-type: the last bare word of the query matches as a prefix. */
  prefix: boolean;
}

/**
 * A parsed query: every group must match (AND), a group matches when any of its
 * alternatives does (`a OR b`), and no excluded term may match (`-word`).
 */
export interface ParsedQuery {
  groups: Term[][];
  excluded: Term[];
}

const invalid = (detail: string) =>
  new PlexicaError('PLX_SEARCH_QUERY_INVALID', { detail, errors: [{ field: 'q', message: detail }] });

/**
 * Parses the user's query syntax: words, `"quoted phrases"`, `-exclusion`, `OR`.
 * Anything that is not that syntax is refused with PLX_SEARCH_QUERY_INVALID, never
 * passed to `to_tsquery` (whose own syntax errors would be 500s).
 *
 * @example parseQuery('"new york" pizza -pineapple OR pasta')
 */
export function parseQuery(text: string, options: { prefix: boolean }): ParsedQuery {
  if (text.trim() === '') throw invalid('the query is empty');
  if (text.length > MAX_QUERY_LENGTH)
    throw invalid(`the query is longer than ${MAX_QUERY_LENGTH} characters`);
  const bad = FORBIDDEN.exec(text);
  if (bad) throw invalid(`"${bad[0]}" is not part of the query syntax (words, "phrases", -word, OR)`);
  if ((text.match(/"/g)?.length ?? 0) % 2 === 1) throw invalid('a quote is not closed');

  type Token = { kind: 'or' } | { kind: 'term'; term: Term; negated: boolean };
  const tokens: Token[] = [];
  const pattern = /(-?)"([^"]*)"|(\S+)/g;
  for (const match of text.matchAll(pattern)) {
    if (match[2] !== undefined) {
      const words = wordsOf(match[2]);
      if (words.length > 0)
        tokens.push({
          kind: 'term',
          negated: match[1] === '-',
          term: { words, phrase: true, prefix: false },
        });
      continue;
    }
    const raw = match[3] ?? '';
    if (raw === 'OR') {
      tokens.push({ kind: 'or' });
      continue;
    }
    const negated = raw.startsWith('-');
    const words = wordsOf(negated ? raw.slice(1) : raw);
    if (words.length === 0) continue;
    // `e-mail`, `o'brien`: the pieces of one token are a phrase
    tokens.push({ kind: 'term', negated, term: { words, phrase: words.length > 1, prefix: false } });
  }

  const groups: Term[][] = [];
  const excluded: Term[] = [];
  let joinNext = false;
  for (const token of tokens) {
    if (token.kind === 'or') {
      joinNext = groups.length > 0;
      continue;
    }
    if (token.negated) excluded.push(token.term);
    else if (joinNext) groups[groups.length - 1]?.push(token.term);
    else groups.push([token.term]);
    joinNext = false;
  }
  if (groups.length === 0) {
    throw invalid(
      excluded.length > 0 ? 'the query only excludes: name a word to find' : 'the query has no words',
    );
  }
  if (groups.flat().length + excluded.length > MAX_TERMS)
    throw invalid(`the query has more than ${MAX_TERMS} terms`);
  const last = tokens.at(-1);
  if (options.prefix && last?.kind === 'term' && !last.negated && !last.term.phrase && !/\s$/.test(text)) {
    last.term.prefix = true;
  }
  return { groups, excluded };
}

function wordsOf(text: string): string[] {
  return Array.from(text.toLowerCase().matchAll(WORD), (m) => m[0]);
}

/** Alternatives for a word (typo corrections); the word itself always stays one of them. */
export type Expansions = ReadonlyMap<string, readonly string[]>;

const quote = (word: string) => `'${word}'`;
function termText(term: Term, expansions?: Expansions): string {
  if (term.phrase) return `(${term.words.map(quote).join(' <-> ')})`;
  const word = term.words[0] ?? '';
  const own = term.prefix ? `${quote(word)}:*` : quote(word);
  const more = expansions?.get(word) ?? [];
  return more.length === 0 ? own : `(${[own, ...more.map(quote)].join(' | ')})`;
}

/**
 * The query as `to_tsquery` text. Words hold only letters and digits, so quoting
 * them is safe; the text search configuration then unaccents and stems them.
 */
export function toTsquery(query: ParsedQuery, expansions?: Expansions): string {
  const parts = query.groups.map((group) => {
    const alternatives = group.map((term) => termText(term, expansions));
    return alternatives.length === 1 ? (alternatives[0] ?? '') : `(${alternatives.join(' | ')})`;
  });
  for (const term of query.excluded) parts.push(`!${termText(term)}`);
  return parts.join(' & ');
}

/** Words typo tolerance may correct: bare words of 4 letters or more (seed: `jhon` → John). */
export const correctableWords = (query: ParsedQuery): string[] =>
  query.groups
    .flat()
    .filter((t) => !t.phrase && (t.words[0]?.length ?? 0) >= 4)
    .map((t) => t.words[0] ?? '');

/** Damerau–Levenshtein (optimal string alignment) distance, for checking trigram candidates. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array(rows * cols).fill(0);
  const at = (i: number, j: number) => d[i * cols + j] ?? 0;
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, at(i - 2, j - 2) + 1);
      d[i * cols + j] = best;
    }
  }
  return at(a.length, b.length);
}

/** The query text with each corrected word replaced: the "did you mean" line. */
export function rewriteQuery(text: string, corrections: ReadonlyMap<string, string>): string {
  return text.replace(WORD, (word) => corrections.get(word.toLowerCase()) ?? word);
}
