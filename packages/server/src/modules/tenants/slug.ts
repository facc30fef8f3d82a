import { PlexicaError } from '../../infra/errors.js';

// Words that would collide with routes, schemas, hostnames or roles.
const RESERVED = new Set([
  'admin',
  'administrator',
  'api',
  'app',
  'auth',
  'core',
  'dashboard',
  'default',
  'docs',
  'global',
  'health',
  'internal',
  'login',
  'metrics',
  'null',
  'pg-catalog',
  'plexica',
  'plugin',
  'plugins',
  'public',
  'ready',
  'root',
  'static',
  'status',
  'super-admin',
  'support',
  'system',
  'tenant',
  'tenants',
  'test',
  'undefined',
  'www',
  'information-schema',
]);

const SLUG = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;

/**
 * Slugs are 3–40 characters of `[a-z0-9-]`, starting and ending with a letter or
 * digit, no `--`, and not a reserved word. They name the tenant's schema, Redis
 * keys and event topics, so nothing else may pass.
 */
export function assertValidSlug(slug: string): void {
  const invalid = (message: string) =>
    new PlexicaError('PLX_TENANT_SLUG_INVALID', { detail: message, errors: [{ field: 'slug', message }] });
  if (slug.length < 3 || slug.length > 40) throw invalid('slug must be 3 to 40 characters');
  if (!SLUG.test(slug) || slug.includes('--')) {
    throw invalid(
      'slug may hold only a-z, 0-9 and single hyphens, and must start and end with a letter or digit',
    );
  }
  if (RESERVED.has(slug) || slug.startsWith('pg-')) {
    throw new PlexicaError('PLX_TENANT_SLUG_RESERVED', {
      detail: `"${slug}" is reserved`,
      errors: [{ field: 'slug', message: 'reserved word' }],
    });
  }
}
