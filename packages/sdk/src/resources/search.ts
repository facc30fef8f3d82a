import type { Body } from '../operations.js';
import type { components } from '../schema.js';
import { type Transport, unwrap } from '../transport.js';

export type SearchResult = components['schemas']['SearchResult'];
export type SearchType = components['schemas']['SearchType'];
export type SearchDocument = Body<'/api/v1/search/index', 'post'>;

/** Full-text search in the caller's tenant: query, index, delete, types, reindex. */
export function createSearchResource({ api }: Transport) {
  return {
    /** Words, "phrases", -word, OR; the last word matches as a prefix. */
    query: (body: Body<'/api/v1/search', 'post'>) => unwrap(api.POST('/api/v1/search', { body })),
    suggest: (body: Body<'/api/v1/search/suggest', 'post'>) =>
      unwrap(api.POST('/api/v1/search/suggest', { body })),
    index: (document: SearchDocument) => unwrap(api.POST('/api/v1/search/index', { body: document })),
    /** Up to 10,000 documents as JSON in one transaction (for more, stream NDJSON to the same route). */
    indexBulk: (documents: SearchDocument[]) =>
      unwrap(api.POST('/api/v1/search/index/bulk', { body: { documents } as never })),
    delete: (type: string, id: string) =>
      unwrap(api.DELETE('/api/v1/search/{id}', { params: { path: { id }, query: { type } } })),
    deleteWhere: (body: Body<'/api/v1/search/delete', 'post'>) =>
      unwrap(api.POST('/api/v1/search/delete', { body })),
    /** Starts a background job; follow it with `jobs.get(job.id)`. */
    reindex: (type: string) => unwrap(api.POST('/api/v1/search/reindex', { body: { type } })),
    types: () => unwrap(api.GET('/api/v1/search/types')),
    putType: (type: string, body: Body<'/api/v1/search/types/{type}', 'put'>) =>
      unwrap(api.PUT('/api/v1/search/types/{type}', { params: { path: { type } }, body })),
  };
}
