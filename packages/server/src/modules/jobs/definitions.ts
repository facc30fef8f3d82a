import type { TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { PlexicaError } from '../../infra/errors.js';
import type { EnqueueInput, JobDefinition } from './service.js';

/** Checks a payload: TypeBox's compiled check for types defined here, Ajv for declared ones. */
export interface PayloadCheck {
  Check(data: unknown): boolean;
  Errors(data: unknown): Iterable<{ path: string; message: string }>;
}

/** A job type as registered, defaults applied. */
export type Definition = Required<Omit<JobDefinition, 'schema' | 'retryDelaySeconds' | 'validate'>> & {
  retryDelaySeconds: number | undefined;
  schema?: TSchema;
  check?: PayloadCheck;
  validate?: JobDefinition['validate'];
  /**
   * Declared by another process (a worker) through `core.job_types`: this one
   * checks and enqueues it, never runs it (its handler throws).
   */
  declared?: true;
};

const JOB_TYPE = /^[a-z][a-z0-9_.-]{0,99}$/;

/** Checks `definition` and applies the defaults. @throws for a malformed or duplicate type (a programming error) */
export function toDefinition(definition: JobDefinition, known: ReadonlyMap<string, Definition>): Definition {
  if (!JOB_TYPE.test(definition.type)) throw new Error(`job type "${definition.type}" is not module.action`);
  // a type another process declared may be defined here too: this process then runs it
  if (known.has(definition.type) && !known.get(definition.type)?.declared)
    throw new Error(`job type ${definition.type} is already defined`);
  return {
    type: definition.type,
    handler: definition.handler as JobDefinition['handler'],
    maxAttempts: definition.maxAttempts ?? 3,
    timeoutMs: definition.timeoutMs ?? 300_000,
    concurrency: definition.concurrency ?? 5,
    tenantConcurrency: definition.tenantConcurrency ?? 2,
    retryDelaySeconds: definition.retryDelaySeconds,
    ...(definition.schema && { schema: definition.schema, check: TypeCompiler.Compile(definition.schema) }),
    ...(definition.validate && { validate: definition.validate }),
  };
}

/**
 * What `enqueue` would refuse, refused with the field named (`3.data.email`
 * for the fourth job of a bulk): an unknown type, a payload its schema
 * rejects, a run time that is not a date. @returns the definition and normalised input
 */
export function checkInput(
  definitions: ReadonlyMap<string, Definition>,
  input: EnqueueInput,
  index?: number,
) {
  const field = (name: string) => (index === undefined ? name : `${index}.${name}`);
  const definition = definitions.get(input.type);
  if (!definition) {
    throw new PlexicaError('PLX_JOB_TYPE_UNKNOWN', {
      detail: `no job type "${input.type}" is registered`,
      errors: [
        { field: field('type'), message: `unknown job type; known: ${[...definitions.keys()].join(', ')}` },
      ],
    });
  }
  const data = input.data ?? {};
  if (definition.check && !definition.check.Check(data)) {
    const errors = [...definition.check.Errors(data)].slice(0, 10).map((e) => ({
      field: field(`data${e.path.replaceAll('/', '.')}`),
      message: e.message,
    }));
    throw new PlexicaError('PLX_VALIDATION', { detail: `payload of ${input.type} is invalid`, errors });
  }
  const runAt = input.runAt === undefined ? new Date() : new Date(input.runAt);
  if (Number.isNaN(runAt.getTime())) {
    throw new PlexicaError('PLX_VALIDATION', {
      errors: [{ field: field('runAt'), message: 'is not a date' }],
    });
  }
  return { definition, data, runAt };
}
