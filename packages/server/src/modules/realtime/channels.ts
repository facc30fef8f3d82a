import type { RequestContext } from '../../context.js';
import { isPlexicaError, PlexicaError } from '../../infra/errors.js';
import type { PermissionRegistry } from '../../permissions.js';
import type { AppsService, CloudEvent } from '../events/index.js';

/**
 * A stream's channels: `user:{id}` (the user's own: events whose subject is
 * `user/{id}` or whose data names them as `userId`, notifications among them;
 * `user:me` stands for the caller), `tenant` (every event of the tenant) and
 * `app:{id}` (what one app of the tenant published). All are within the
 * caller's tenant: the stream reads only that tenant's entries of the log.
 */
export type Channel = { kind: 'user'; id: string } | { kind: 'tenant' } | { kind: 'app'; id: string };

/** A channel joined with its type filters (none = every type). */
export interface Subscription {
  key: string;
  channel: Channel;
  types: string[];
  match(event: CloudEvent): boolean;
}

/** The permission the tenant and app channels need: what the event log API needs (GET /api/v1/events). */
export const READ_EVENTS = 'events:event:read';
const MAX_TYPES = 20;
const ID = /^[A-Za-z0-9_-]{1,64}$/;
const TYPE_PATTERN = /^([a-z0-9][a-z0-9_-]*|\*)(\.([a-z0-9][a-z0-9_-]*|\*))*$/;

const invalid = (detail: string) => new PlexicaError('PLX_REALTIME_CHANNEL_INVALID', { detail });
const forbidden = (detail: string) => new PlexicaError('PLX_REALTIME_CHANNEL_FORBIDDEN', { detail });

export function parseChannel(text: unknown, ctx: RequestContext): Channel {
  if (typeof text !== 'string' || text.length > 100)
    throw invalid('channel must be a string of at most 100 characters');
  if (text === 'tenant') return { kind: 'tenant' };
  const [kind, id, ...rest] = text.split(':');
  if (rest.length > 0 || id === undefined || !ID.test(id))
    throw invalid(`channel "${text.slice(0, 100)}" is not user:{id}, tenant or app:{id}`);
  if (kind === 'user') return { kind, id: id === 'me' ? (ctx.principal?.userId ?? '') : id };
  if (kind === 'app') return { kind, id };
  throw invalid(`channel "${text.slice(0, 100)}" is not user:{id}, tenant or app:{id}`);
}

type TypeMatcher = { types: string[]; test(type: string): boolean };
const EVERY_TYPE: TypeMatcher = { types: [], test: () => true };
// thousands of streams share a few filters: one compiled matcher each (bounded: a client
// cannot grow it past the bound with made-up filters, it only evicts the oldest)
const MATCHERS = new Map<string, TypeMatcher>();
const MAX_MATCHERS = 1000;

/** Same grammar as the bus's topic patterns: `*` is one segment, a trailing `*` one or more. */
export function typeMatcher(types: unknown): TypeMatcher {
  if (types === undefined) return EVERY_TYPE;
  const key = Array.isArray(types) ? JSON.stringify(types) : undefined;
  const known = key === undefined ? undefined : MATCHERS.get(key);
  if (known) return known;
  const matcher = compileTypes(types);
  if (key !== undefined) {
    if (MATCHERS.size >= MAX_MATCHERS) MATCHERS.delete(MATCHERS.keys().next().value ?? '');
    MATCHERS.set(key, matcher);
  }
  return matcher;
}

function compileTypes(types: unknown): TypeMatcher {
  if (!Array.isArray(types) || types.length > MAX_TYPES)
    throw invalid(`types must be a list of at most ${MAX_TYPES} patterns`);
  const sources = types.map((t: unknown) => {
    if (typeof t !== 'string' || t.length > 200 || !TYPE_PATTERN.test(t))
      throw invalid(
        'a type filter is segment(.segment)* with * for one segment (a trailing * for one or more)',
      );
    const segments = t.split('.');
    return segments
      .map((s, i) =>
        s !== '*' ? s.replaceAll('-', '\\-') : i === segments.length - 1 ? '[^.]+(\\.[^.]+)*' : '[^.]+',
      )
      .join('\\.');
  });
  if (sources.length === 0) return EVERY_TYPE;
  const regex = new RegExp(`^(${sources.join('|')})$`);
  return { types: types as string[], test: (type) => regex.test(type) };
}

const userOf = (event: CloudEvent): string | undefined => {
  const data = event.data as { userId?: unknown } | null;
  return data && typeof data === 'object' && typeof data.userId === 'string' ? data.userId : undefined;
};

/**
 * The subscription, once the principal may hold it: never another user's
 * channel, an app of another tenant (answered as forbidden, not as unknown),
 * or the tenant's events without the permission that reads them.
 */
export async function authorizeSubscription(
  ctx: RequestContext,
  input: { channel: unknown; types?: unknown },
  deps: { registry: PermissionRegistry; apps: AppsService },
): Promise<Subscription> {
  const channel = parseChannel(input.channel, ctx);
  const filter = typeMatcher(input.types);
  const principal = ctx.principal;
  const tenantId = ctx.tenant?.id;
  if (!principal || !tenantId) throw forbidden('the stream has no tenant');
  const needPermission = () => {
    try {
      deps.registry.authorize(ctx, READ_EVENTS);
    } catch (err) {
      if (isPlexicaError(err) && err.code === 'PLX_PERMISSION_DENIED')
        throw forbidden(`the ${channel.kind} channel needs ${READ_EVENTS}`);
      throw err;
    }
  };
  let match: (event: CloudEvent) => boolean;
  if (channel.kind === 'user') {
    if (principal.type !== 'user' || channel.id !== principal.userId)
      throw forbidden("a user's channel is theirs alone");
    const subject = `user/${channel.id}`;
    match = (e) => e.subject === subject || userOf(e) === channel.id;
  } else if (channel.kind === 'tenant') {
    needPermission();
    match = () => true;
  } else {
    needPermission();
    try {
      await deps.apps.get(ctx, channel.id);
    } catch (err) {
      if (isPlexicaError(err) && err.code === 'PLX_APP_NOT_FOUND')
        throw forbidden('no such app in this tenant');
      throw err;
    }
    const source = `/apps/${channel.id}`;
    match = (e) => e.source === source;
  }
  const key = channel.kind === 'tenant' ? 'tenant' : `${channel.kind}:${channel.id}`;
  return {
    key,
    channel,
    types: filter.types,
    // the tenant check again here: a subscription never matches another tenant's event
    match: (e) => e.tenantid === tenantId && filter.test(e.type) && match(e),
  };
}
