import { type RateLimitStore, rateLimitedError } from './store.js';

/**
 * A per-tenant budget of one kind of action (seed 002: events published,
 * webhook management calls), on the shared rate-limit store, so every
 * instance counts against the same window (`tenant:{slug}:{name}`).
 */
export function createTenantLimit(
  store: RateLimitStore,
  limit: { name: string; max: number; windowMs: number },
) {
  return async (tenant: { slug: string }): Promise<void> => {
    const { count, resetInMs } = await store.hit(`tenant:${tenant.slug}:${limit.name}`, limit.windowMs);
    if (count > limit.max)
      throw rateLimitedError(
        `this tenant's limit of ${limit.max} ${limit.name} per window is reached`,
        resetInMs,
      );
  };
}

export type TenantLimit = ReturnType<typeof createTenantLimit>;
