import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifySchema, FastifySchemaCompiler } from 'fastify';
import { addJsonBoundsKeyword } from './bounded-json.js';

/**
 * Bodies are validated strictly: no type coercion (`"5"` is not a number) and
 * no silent removal of unknown fields (closed schemas refuse them). Path and
 * query parameters arrive as strings, so those are coerced. Both know the
 * bounds keyword of free-form JSON (`JsonData` in schemas.ts).
 */
export function createValidatorCompiler(): FastifySchemaCompiler<FastifySchema> {
  const base = { allErrors: false, removeAdditional: false, useDefaults: true, strict: false } as const;
  const strict = addJsonBoundsKeyword(addFormats.default(new Ajv.default({ ...base, coerceTypes: false })));
  const coercing = addJsonBoundsKeyword(
    addFormats.default(new Ajv.default({ ...base, coerceTypes: 'array' })),
  );
  const cache = new WeakMap<object, ValidateFunction>();
  return ({ schema, httpPart }) => {
    const ajv = httpPart === 'body' ? strict : coercing;
    const key = schema as object;
    let validate = httpPart === 'body' ? undefined : cache.get(key);
    if (!validate) {
      validate = ajv.compile(schema);
      if (httpPart !== 'body') cache.set(key, validate);
    }
    return validate;
  };
}
