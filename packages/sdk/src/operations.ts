import type { paths } from './schema.js';

/** The JSON body of an operation, e.g. `Body<'/api/v1/users', 'post'>`. */
export type Body<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  requestBody?: { content: { 'application/json': infer B } };
}
  ? B
  : never;

/** The query parameters of an operation, e.g. `Query<'/api/v1/jobs', 'get'>`. */
export type Query<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  parameters: { query?: infer Q };
}
  ? NonNullable<Q>
  : never;

/** The path parameters of every `/{id}` route. */
export const byId = (id: string) => ({ params: { path: { id } } });
