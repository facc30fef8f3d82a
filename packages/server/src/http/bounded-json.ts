import type { Ajv, SchemaValidateFunction } from 'ajv';

/** Schema keyword that bounds a free-form JSON value (`Type.Unknown`) before it is stored. */
export const JSON_BOUNDS_KEYWORD = 'x-plexica-json-bounds';

export interface JsonBounds {
  /** Containers (objects, arrays) nested in one another; `{}` is 1, a scalar 0. */
  maxDepth: number;
  /** Size of the value written as JSON, in UTF-8 bytes. */
  maxBytes: number;
}

/**
 * Why `value` exceeds `bounds`, or undefined. The depth walk keeps its own
 * stack: a value nested ~4,200 levels deep overflowed the call stack of
 * `JSON.stringify` (issue 9 item 7), and so would any recursive check. Only
 * once the depth is known to be bounded is the value stringified to measure it.
 */
export function jsonBoundsProblem(value: unknown, bounds: JsonBounds): string | undefined {
  const stack: [unknown, number][] = [[value, 1]];
  for (let next = stack.pop(); next; next = stack.pop()) {
    const [node, depth] = next;
    if (node === null || typeof node !== 'object') continue;
    if (depth > bounds.maxDepth) return `nests deeper than ${bounds.maxDepth} levels`;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  const bytes = Buffer.byteLength(JSON.stringify(value) ?? '');
  if (bytes > bounds.maxBytes) return `is larger than ${bounds.maxBytes} bytes as JSON`;
  return undefined;
}

/** Teaches an Ajv instance the bounds keyword; its error names the field like any other. */
export function addJsonBoundsKeyword(ajv: Ajv): Ajv {
  const validate: SchemaValidateFunction = (bounds: JsonBounds, data: unknown) => {
    const problem = jsonBoundsProblem(data, bounds);
    if (problem === undefined) return true;
    validate.errors = [{ keyword: JSON_BOUNDS_KEYWORD, message: problem, params: {} }];
    return false;
  };
  return ajv.addKeyword({ keyword: JSON_BOUNDS_KEYWORD, schemaType: 'object', errors: true, validate });
}
