import type { ConfigFragment } from '../../infra/options.js';

/** The secrets module's settings. */
export interface SecretsConfig {
  /** Master keys, newest first; the first one encrypts, all of them decrypt. */
  masterKey: string[];
}

/** Every setting of this fragment, its environment variable, type and default. */
export const secretsOptions: ConfigFragment<SecretsConfig>['options'] = {
  masterKey: {
    env: 'PLEXICA_MASTER_KEY',
    kind: { type: 'list' },
    default: [],
    description:
      'Base64 32-byte master key(s), comma-separated, newest first. Required with PLEXICA_DATABASE_URL; embedded mode generates one into the data dir',
  },
};
