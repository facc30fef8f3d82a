import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { RequestContext } from '../../context.js';
import { PlexicaError } from '../../infra/errors.js';

/**
 * An event as it travels: a CloudEvents 1.0 structured envelope with the
 * extensions every Plexica event carries (`tenantid`, `traceparent`).
 * https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md
 */
export interface CloudEvent<T = unknown> {
  specversion: '1.0';
  id: string;
  /** `/plexica/core` for the core, `/apps/{appId}` for an app. */
  source: string;
  /** `segment(.segment)+`, e.g. `core.user.created`. */
  type: string;
  time: string;
  subject?: string;
  datacontenttype: 'application/json';
  data: T;
  /** The tenant the event belongs to; absent for platform (`global.*`) events. */
  tenantid?: string;
  /** W3C trace context of the work that published the event. */
  traceparent: string;
  /** Set on a re-driven dead letter: only this consumer group receives it again. */
  plexicaredrive?: string;
}

/** An envelope on its way to a driver: its topic (`{slug}.{type}` or `global.{type}`) and ordering key. */
export interface OutgoingEvent {
  topic: string;
  key: string | null;
  event: CloudEvent;
}

export const CORE_SOURCE = '/plexica/core';

const SEGMENT = '[a-z0-9][a-z0-9_-]*';
/** seed 003: `segment(.segment)+`, lower case. */
export const EVENT_TYPE = new RegExp(`^${SEGMENT}(\\.${SEGMENT})+$`);
const PATTERN_SEGMENT = new RegExp(`^(${SEGMENT}|\\*)$`);
export const MAX_TYPE_LENGTH = 200;

export function assertEventType(type: string): void {
  if (type.length > MAX_TYPE_LENGTH || !EVENT_TYPE.test(type))
    throw new PlexicaError('PLX_EVENT_TYPE_INVALID', {
      detail: `event type must be lower-case segment(.segment)+ of at most ${MAX_TYPE_LENGTH} characters`,
      errors: [{ field: 'type', message: 'must match segment(.segment)+' }],
    });
}

/**
 * Topic patterns: segments separated by `.`; `*` inside a pattern matches one
 * segment, a trailing `*` matches one or more (`acme.crm.*` matches
 * `acme.crm.deal.created`; `*.core.user.created` matches it in every tenant).
 * The same grammar maps onto NATS subjects (`*` and `>`) and onto a regular
 * expression for the other engines.
 */
export function parseTopicPattern(pattern: string): string[] {
  const segments = pattern.split('.');
  if (pattern.length > MAX_TYPE_LENGTH + 64 || segments.some((s) => !PATTERN_SEGMENT.test(s)))
    throw new PlexicaError('PLX_EVENT_PATTERN_INVALID', {
      detail: `topic pattern "${pattern.slice(0, 100)}" must be segments or * separated by dots`,
    });
  return segments;
}

/** The regular expression (source) matching any topic of `patterns`. */
export function patternsRegex(patterns: readonly string[]): string {
  const alternatives = patterns.map((pattern) => {
    const segments = parseTopicPattern(pattern);
    const parts = segments.map((s, i) =>
      s !== '*' ? s.replaceAll('-', '\\-') : i === segments.length - 1 ? '[^.]+(\\.[^.]+)*' : '[^.]+',
    );
    return parts.join('\\.');
  });
  return `^(${alternatives.join('|')})$`;
}

/** The tenant-less prefix of platform topics. */
export const GLOBAL_TOPIC_PREFIX = 'global';

export const topicOf = (tenantSlug: string | null, type: string): string =>
  `${tenantSlug ?? GLOBAL_TOPIC_PREFIX}.${type}`;

/**
 * A W3C `traceparent` for a Plexica trace id: a 32-hex trace id is used as is
 * (what OpenTelemetry clients send), anything else is hashed to one, so the
 * same X-Trace-ID always gives the same trace.
 */
export function traceparentOf(traceId: string): string {
  const hex = /^[0-9a-f]{32}$/.test(traceId)
    ? traceId
    : createHash('sha256').update(traceId).digest('hex').slice(0, 32);
  return `00-${hex}-${randomBytes(8).toString('hex')}-01`;
}

export interface EnvelopeInput {
  type: string;
  data: unknown;
  subject?: string;
  source?: string;
  /** Defaults to now; the platform events API lets an app say when it happened. */
  time?: Date;
  id?: string;
}

export function buildEnvelope(ctx: RequestContext, input: EnvelopeInput): CloudEvent {
  assertEventType(input.type);
  return {
    specversion: '1.0',
    id: input.id ?? randomUUID(),
    source: input.source ?? CORE_SOURCE,
    type: input.type,
    time: (input.time ?? new Date()).toISOString(),
    ...(input.subject !== undefined && { subject: input.subject }),
    datacontenttype: 'application/json',
    data: input.data ?? null,
    ...(ctx.tenant && { tenantid: ctx.tenant.id }),
    traceparent: traceparentOf(ctx.traceId),
  };
}
