import { type RateLimitStore, rateLimitedError } from './store.js';

/** A per-tenant budget's check: throws `PLX_RATE_LIMITED` once the tenant's window is spent. */
export type TenantLimit<T extends { slug: string } = { slug: string }> = (tenant: T) => Promise<void>;

/**
 * A per-tenant budget of one kind of action (seed 002: events published,
 * webhook management calls), on the shared rate-limit store, so every
 * instance counts against the same window (`tenant:{slug}:{name}`).
 * `maxOf` gives a tenant's own budget (a super admin's override in its
 * settings); `max` is everyone else's.
 */
export function createTenantLimit<T extends { slug: string }>(
  store: RateLimitStore,
  limit: { name: string; max: number; windowMs: number; maxOf?: (tenant: T) => number | undefined },
): TenantLimit<T> {
  return async (tenant) => {
    const max = limit.maxOf?.(tenant) ?? limit.max;
    const { count, resetInMs } = await store.hit(`tenant:${tenant.slug}:${limit.name}`, limit.windowMs);
    if (count > max)
      throw rateLimitedError(`this tenant's limit of ${max} ${limit.name} per window is reached`, resetInMs);
  };
}
