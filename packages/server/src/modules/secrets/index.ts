import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Executor } from '../../infra/database/index.js';
import type { ModuleDefinition, PlexicaModule } from '../../module.js';
import { type SecretsConfig, secretsOptions } from './config.js';
import { resolveMasterKeys } from './master-key.js';
import { secretsMigrations } from './migrations.js';
import { createSecretsService, type SecretsService } from './service.js';
import type { SecretsTables } from './tables.js';

export type { SecretsConfig } from './config.js';
export type { MasterKey } from './master-key.js';
export type { SecretsService } from './service.js';

/** Envelope-encrypted secrets under the configured master keys. */
export const secretsModule: ModuleDefinition<SecretsConfig> = {
  name: 'secrets',
  config: { options: secretsOptions },
  coreMigrations: secretsMigrations,
};

export async function createSecretsModule(deps: {
  db: Executor;
  logger: Logger;
  config: SecretsConfig;
  /** Embedded mode keeps a generated master key in the data dir; an external database needs one given. */
  dataDir: string;
  databaseUrl: string | undefined;
}): Promise<PlexicaModule<SecretsService>> {
  const keys = await resolveMasterKeys(
    { ...deps.config, dataDir: deps.dataDir, databaseUrl: deps.databaseUrl },
    deps.logger,
    async () => {
      const row = await (deps.db as Kysely<SecretsTables>)
        .selectFrom('core.secrets')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirst()
        // not migrated yet (PLEXICA_MIGRATE_ON_START=false on a new database): nothing stored
        .catch(() => undefined);
      return Number(row?.n ?? 0);
    },
  );
  return { name: 'secrets', service: createSecretsService(deps.db, keys) };
}
