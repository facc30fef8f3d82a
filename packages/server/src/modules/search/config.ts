import type { ConfigFragment } from '../../infra/options.js';

/** Text search configurations a tenant may choose; each is `core.plx_<language>` (unaccent + stemmer). */
export const SEARCH_LANGUAGES = [
  'simple',
  'english',
  'french',
  'german',
  'spanish',
  'italian',
  'portuguese',
  'dutch',
] as const;
export type SearchLanguage = (typeof SEARCH_LANGUAGES)[number];

/** The search module's settings: limits on documents, queries and counts. */
export interface SearchConfig {
  searchLanguage: SearchLanguage;
  searchMaxDocumentBytes: number;
  searchCountLimit: number;
}

/** Every setting of this fragment, its environment variable, type and default. */
export const searchOptions: ConfigFragment<SearchConfig>['options'] = {
  searchLanguage: {
    env: 'PLEXICA_SEARCH_LANGUAGE',
    kind: { type: 'enum', values: SEARCH_LANGUAGES },
    default: 'simple',
    description:
      'Text search configuration of new tenants (unaccent + this stemmer); a tenant may choose its own (PUT /api/v1/search/settings)',
  },
  searchMaxDocumentBytes: {
    env: 'PLEXICA_SEARCH_MAX_DOCUMENT_BYTES',
    kind: { type: 'int', min: 1024, max: 4 * 1024 * 1024 },
    default: 1024 * 1024,
    description: 'Largest document (title, body, fields and tags as JSON) in bytes',
  },
  searchCountLimit: {
    env: 'PLEXICA_SEARCH_COUNT_LIMIT',
    kind: { type: 'int', min: 10, max: 1_000_000 },
    default: 1000,
    description: 'Result totals are exact up to this many matches, then reported as "at least"',
  },
};
