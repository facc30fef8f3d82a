import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import { responses } from '../../http/schemas.js';
import type { Server } from '../../http/types.js';
import { PlexicaError } from '../../infra/errors.js';
import { SEARCH_LANGUAGES } from './config.js';
import { MAX_QUERY_LENGTH } from './query.js';
import type { SearchDocument, SearchService } from './service.js';
import { WEIGHTS } from './types.js';

const tags = ['search'];
const TypeName = Type.String({
  minLength: 3,
  maxLength: 100,
  pattern: '^[a-z][a-z0-9-]*(:[a-z][a-z0-9-]*)+$',
});
const Scalar = Type.Union([Type.String({ maxLength: 10_000 }), Type.Number(), Type.Boolean()]);
const FieldValue = Type.Union([Scalar, Type.Array(Scalar, { maxItems: 100 })]);
// a long query is our own 400 (PLX_SEARCH_QUERY_INVALID), so the schema lets 10 KB through to the parser
const QueryText = Type.String({
  maxLength: 100_000,
  description: `words, "phrases", -word, OR; at most ${MAX_QUERY_LENGTH} characters`,
});

const DocumentBody = Type.Object(
  {
    type: TypeName,
    id: Type.String({ minLength: 1, maxLength: 200 }),
    title: Type.String({ minLength: 1 }),
    body: Type.Optional(Type.String()),
    fields: Type.Optional(Type.Record(Type.String(), FieldValue)),
    tags: Type.Optional(Type.Array(Type.String({ maxLength: 200 }), { maxItems: 100 })),
    access: Type.Optional(
      Type.Object(
        {
          roles: Type.Optional(Type.Array(Type.String({ maxLength: 100 }), { maxItems: 100 })),
          users: Type.Optional(Type.Array(Type.String({ maxLength: 100 }), { maxItems: 1000 })),
        },
        { additionalProperties: false },
      ),
    ),
    updatedAt: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);

const Hit = Type.Object({
  type: Type.String(),
  id: Type.String(),
  title: Type.String(),
  snippet: Type.Optional(Type.String({ description: 'HTML-escaped, matches in <mark>' })),
  score: Type.Number(),
  match: Type.Union([Type.Literal('exact'), Type.Literal('fuzzy')]),
  fields: Type.Record(Type.String(), Type.Unknown()),
  tags: Type.Array(Type.String()),
  updatedAt: Type.String({ format: 'date-time' }),
});
const Facet = Type.Array(Type.Object({ value: Type.String(), count: Type.Integer() }));
const Result = Type.Object(
  {
    items: Type.Array(Hit),
    total: Type.Integer(),
    totalExact: Type.Boolean({ description: 'false: total is "at least"' }),
    nextCursor: Type.Union([Type.String(), Type.Null()]),
    facets: Type.Optional(Type.Record(Type.String(), Facet)),
    didYouMean: Type.Optional(Type.String()),
    groups: Type.Optional(
      Type.Array(
        Type.Object({
          type: Type.String(),
          total: Type.Integer(),
          totalExact: Type.Boolean(),
          items: Type.Array(Hit),
        }),
      ),
    ),
  },
  { $id: 'SearchResult' },
);
const TypeInfo = Type.Object(
  {
    type: Type.String(),
    searchable: Type.Optional(Type.Record(Type.String(), Type.String())),
    attributes: Type.Optional(Type.Array(Type.String())),
    permission: Type.Optional(Type.String()),
    source: Type.Union([Type.Literal('api'), Type.Literal('code')]),
    generation: Type.Integer(),
    reindexing: Type.Boolean(),
    language: Type.String(),
  },
  { $id: 'SearchType' },
);
const Filters = Type.Record(Type.String({ maxLength: 63 }), FieldValue, { maxProperties: 20 });

/** Search routes of seed 000 §8 plus bulk, suggest, deletes by type or query, types and settings. */
export async function searchRoutes(server: Server, deps: { search: SearchService }): Promise<void> {
  const { search } = deps;
  server.addSchema(Result);
  server.addSchema(TypeInfo);

  server.post(
    '/api/v1/search',
    {
      config: { permission: 'search:document:read' },
      schema: {
        tags,
        summary:
          'Search the tenant’s documents: ranked or grouped by type, filtered, faceted, paged by cursor',
        body: Type.Object(
          {
            q: QueryText,
            types: Type.Optional(Type.Array(TypeName, { maxItems: 50 })),
            filters: Type.Optional(Filters),
            facets: Type.Optional(Type.Array(Type.String({ maxLength: 63 }), { maxItems: 10 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
            cursor: Type.Optional(Type.String({ maxLength: 2000 })),
            groupBy: Type.Optional(Type.Literal('type')),
            prefix: Type.Optional(
              Type.Boolean({ description: 'the last word matches as a prefix (default true)' }),
            ),
            typo: Type.Optional(Type.Boolean({ description: 'correct misspelled words (default true)' })),
            highlight: Type.Optional(Type.Boolean({ description: 'snippets with <mark> (default true)' })),
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: Type.Ref('SearchResult') }),
      },
    },
    async (request) => search.search(request.ctx, request.body),
  );

  server.post(
    '/api/v1/search/suggest',
    {
      config: { permission: 'search:document:read' },
      schema: {
        tags,
        summary: 'Titles completing what the user typed (search-as-you-type)',
        body: Type.Object(
          {
            q: QueryText,
            types: Type.Optional(Type.Array(TypeName, { maxItems: 50 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 20, default: 8 })),
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: Type.Object({ suggestions: Type.Array(Type.String()) }) }),
      },
    },
    async (request) => ({ suggestions: await search.suggest(request.ctx, request.body) }),
  );

  server.post(
    '/api/v1/search/index',
    {
      config: { permission: 'search:document:write' },
      // a document may be up to PLEXICA_SEARCH_MAX_DOCUMENT_BYTES: a larger one is our precise 400
      bodyLimit: 8 * 1024 * 1024,
      schema: {
        tags,
        summary: 'Index one document (upsert by type and id; an older updatedAt never wins)',
        body: DocumentBody,
        response: responses({ 200: Type.Object({ indexed: Type.Integer() }) }),
      },
    },
    async (request) => {
      await search.index(request.ctx, request.body as SearchDocument);
      return { indexed: 1 };
    },
  );

  await server.register(async (scope) => {
    // NDJSON streams through: 100,000 documents are one request, never held in memory at once
    scope.addContentTypeParser('application/x-ndjson', (_request, payload, done) => done(null, payload));
    const s = scope as unknown as Server;
    s.post(
      '/api/v1/search/index/bulk',
      {
        config: { permission: 'search:document:write' },
        bodyLimit: 8 * 1024 * 1024,
        schema: {
          tags,
          summary:
            'Index many documents in one transaction: application/x-ndjson (one document a line, streamed) or JSON {documents}',
          response: responses({ 200: Type.Object({ indexed: Type.Integer() }) }),
        },
      },
      async (request) => {
        const body = request.body as Readable | { documents?: unknown };
        if (body && typeof (body as Readable).pipe === 'function')
          return { indexed: await search.indexBulk(request.ctx, ndjson(body as Readable)) };
        const documents = (body as { documents?: unknown })?.documents;
        if (!Array.isArray(documents) || documents.length === 0 || documents.length > 10_000)
          throw new PlexicaError('PLX_SEARCH_BULK_INVALID', {
            detail: 'send application/x-ndjson, or JSON {"documents": [...]} with 1 to 10,000 documents',
          });
        return { indexed: await search.indexBulk(request.ctx, documents as SearchDocument[]) };
      },
    );
  });

  server.delete(
    '/api/v1/search/:id',
    {
      config: { permission: 'search:document:write' },
      schema: {
        tags,
        summary: 'Remove a document from the index (its type names it: ids are per type)',
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) }),
        querystring: Type.Object({ type: TypeName }, { additionalProperties: false }),
        response: responses({ 204: Type.Null() }),
      },
    },
    async (request, reply) => {
      await search.delete(request.ctx, request.query.type, request.params.id);
      return reply.code(204).send(null);
    },
  );

  server.post(
    '/api/v1/search/delete',
    {
      config: { permission: 'search:document:write' },
      schema: {
        tags,
        summary: 'Delete every document of a type, or those a query matches exactly',
        body: Type.Object(
          {
            type: Type.Optional(TypeName),
            q: Type.Optional(QueryText),
            types: Type.Optional(Type.Array(TypeName, { maxItems: 50 })),
            filters: Type.Optional(Filters),
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: Type.Object({ deleted: Type.Integer() }) }),
      },
    },
    async (request) => {
      const { type, q, types, filters } = request.body;
      if (q !== undefined)
        return {
          deleted: await search.deleteByQuery(request.ctx, {
            q,
            ...(types && { types }),
            ...(filters && { filters }),
          }),
        };
      if (type !== undefined) return { deleted: await search.deleteByType(request.ctx, type) };
      throw new PlexicaError('PLX_VALIDATION', {
        detail: 'name a type, or a query q',
        errors: [{ field: 'type', message: 'type or q is required' }],
      });
    },
  );

  server.post(
    '/api/v1/search/reindex',
    {
      config: { permission: 'search:index:reindex' },
      schema: {
        tags,
        summary:
          'Rebuild a type’s index in a background job (GET /api/v1/jobs/{id} for progress, DELETE to cancel)',
        body: Type.Object({ type: TypeName }, { additionalProperties: false }),
        response: responses({ 202: Type.Ref('Job') }),
      },
    },
    async (request, reply) => reply.code(202).send(await search.reindex(request.ctx, request.body.type)),
  );

  server.get(
    '/api/v1/search/types',
    {
      config: { permission: 'search:document:read' },
      schema: {
        tags,
        summary: 'Types registered in this tenant (by modules and over the API)',
        response: responses({ 200: Type.Array(Type.Ref('SearchType')) }),
      },
    },
    async (request) => search.listTypes(request.ctx),
  );

  server.put(
    '/api/v1/search/types/:type',
    {
      config: { permission: 'search:type:manage' },
      schema: {
        tags,
        summary:
          'Register or change a type: searchable fields and weights, attribute fields, read permission',
        params: Type.Object({ type: TypeName }),
        body: Type.Object(
          {
            searchable: Type.Optional(
              Type.Record(Type.String(), Type.Union(WEIGHTS.map((w) => Type.Literal(w)))),
            ),
            attributes: Type.Optional(Type.Array(Type.String(), { maxItems: 64 })),
            permission: Type.Optional(
              Type.String({ pattern: '^[a-z][a-z0-9-]*:[a-z][a-z0-9-]*:[a-z][a-z0-9-]*$' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: responses({ 200: Type.Ref('SearchType') }),
      },
    },
    async (request) => search.putType(request.ctx, { ...request.body, type: request.params.type }),
  );

  server.put(
    '/api/v1/search/settings',
    {
      config: { permission: 'search:type:manage' },
      schema: {
        tags,
        summary: 'The tenant’s text search language; each type uses it from its next reindex',
        body: Type.Object(
          { language: Type.Union(SEARCH_LANGUAGES.map((l) => Type.Literal(l))) },
          { additionalProperties: false },
        ),
        response: responses({ 200: Type.Object({ language: Type.String() }) }),
      },
    },
    async (request) => search.setLanguage(request.ctx, request.body.language),
  );
}

/** NDJSON lines as documents; a line that is not JSON is a 400 naming the line. */
async function* ndjson(stream: Readable): AsyncGenerator<SearchDocument> {
  let line = 0;
  for await (const text of createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY })) {
    line += 1;
    if (text.trim() === '') continue;
    try {
      yield JSON.parse(text) as SearchDocument;
    } catch (err) {
      if (err instanceof SyntaxError)
        throw new PlexicaError('PLX_SEARCH_BULK_INVALID', {
          detail: `line ${line} is not JSON: ${err.message}`,
        });
      throw err;
    }
  }
}
