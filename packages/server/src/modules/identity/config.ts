import type { ConfigFragment } from '../../infra/options.js';

/** The identity module's settings: the super admin, logins and token lifetimes. */
export interface IdentityConfig {
  adminEmail: string | undefined;
  adminPassword: string | undefined;
  loginMaxFailures: number;
  loginFailureWindowSeconds: number;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  principalCacheTtlSeconds: number;
}

/** Every setting of this fragment, its environment variable, type and default. */
export const identityOptions: ConfigFragment<IdentityConfig>['options'] = {
  adminEmail: {
    env: 'PLEXICA_ADMIN_EMAIL',
    kind: { type: 'string' },
    description: 'Super admin created on first start (default admin@plexica.local)',
  },
  adminPassword: {
    env: 'PLEXICA_ADMIN_PASSWORD',
    kind: { type: 'string' },
    description: 'Password for that super admin; unset = generated and printed once',
  },
  loginMaxFailures: {
    env: 'PLEXICA_LOGIN_MAX_FAILURES',
    kind: { type: 'int', min: 1, max: 10_000 },
    default: 10,
    description:
      'Failed password logins one account (tenant + email) may have per PLEXICA_LOGIN_FAILURE_WINDOW; then its logins answer 429 until the window ends, from any address',
  },
  loginFailureWindowSeconds: {
    env: 'PLEXICA_LOGIN_FAILURE_WINDOW',
    kind: { type: 'int', min: 1, max: 86_400 },
    default: 900,
    description: 'Window of the failed-login counter per account, in seconds (a successful login resets it)',
  },
  accessTokenTtlSeconds: {
    env: 'PLEXICA_ACCESS_TOKEN_TTL',
    kind: { type: 'int', min: 30, max: 86_400 },
    default: 900,
    description: 'Access token lifetime in seconds',
  },
  refreshTokenTtlSeconds: {
    env: 'PLEXICA_REFRESH_TOKEN_TTL',
    kind: { type: 'int', min: 60, max: 31_536_000 },
    default: 30 * 86_400,
    description: 'Refresh token (session) lifetime in seconds',
  },
  principalCacheTtlSeconds: {
    env: 'PLEXICA_PRINCIPAL_CACHE_TTL',
    kind: { type: 'int', min: 0, max: 300 },
    default: 5,
    description:
      'Seconds a resolved principal (session or API key, its roles and tenant) is reused per instance; changes reach every instance at once over the cluster signal channel, and within this bound when a signal is lost; 0 = look up on every request',
  },
};
