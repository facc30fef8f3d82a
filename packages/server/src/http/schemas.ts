import { type TSchema, Type } from '@sinclair/typebox';

/** Shared route schema pieces. */
export const Uuid = Type.String({ format: 'uuid' });
export const IdParams = Type.Object({ id: Uuid });
export const Paging = {
  limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
  offset: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 }),
};
export const Problem = Type.Ref('Problem');

/** Response map: the success schema plus problem documents for errors. */
export const responses = <T extends Record<number, TSchema>>(ok: T) => ({
  ...ok,
  '4xx': Problem,
  '5xx': Problem,
});

export const Page = <T extends TSchema>(item: T) =>
  Type.Object({
    items: Type.Array(item),
    total: Type.Integer(),
    limit: Type.Integer(),
    offset: Type.Integer(),
  });
