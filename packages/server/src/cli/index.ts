import { randomBytes } from 'node:crypto';
import { SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { type App, createApp, migrateCore } from '../app/create-app.js';
import { ConfigError, loadConfig, type PlexicaConfig, ROLES, type Role } from '../config/index.js';
import { isPlexicaError } from '../infra/errors.js';
import { addEventCommands } from './events.js';
import { addJobCommands } from './jobs.js';

type Overrides = Partial<PlexicaConfig>;

/** Runs `fn` with an app that does not listen, and closes it after. */
async function withApp<T>(overrides: Overrides, fn: (app: App) => Promise<T>): Promise<T> {
  const app = await createApp(loadConfig(process.env, { logLevel: 'warn', ...overrides }));
  try {
    return await fn(app);
  } finally {
    await app.close();
  }
}

const parseRole = (value: string): Role => {
  if (!(ROLES as readonly string[]).includes(value))
    throw new InvalidArgumentError(`must be one of ${ROLES.join(', ')}`);
  return value as Role;
};

export function buildCli(): Command {
  const program = new Command('plexica').description('Multi-tenant platform core').showHelpAfterError();

  program
    .command('start')
    .description('Start Plexica (API, workers and scheduler unless --role says otherwise)')
    .option('--role <role>', `one of ${ROLES.join(', ')}`, parseRole)
    .option('--port <port>', 'HTTP port (overrides PLEXICA_PORT)')
    .action(async (options: { role?: Role; port?: string }) => {
      const config = loadConfig(process.env, {
        ...(options.role && { role: options.role }),
        ...(options.port && { port: Number(options.port) }),
      });
      const app = await createApp(config);
      const address = await app.start();
      app.logger.info({ address, role: config.role, database: app.database.kind }, 'plexica started');
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        app.logger.info({ signal }, 'shutting down');
        const force = setTimeout(() => {
          app.logger.error('shutdown timed out; exiting');
          process.exit(1);
        }, config.shutdownTimeoutMs);
        force.unref();
        app.close().then(
          () => process.exit(0),
          (err: unknown) => {
            app.logger.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });

  program
    .command('migrate')
    .description('Apply pending core and tenant migrations')
    .action(async () => {
      await withApp({ migrateOnStart: false }, async (app) => {
        const applied = await migrateCore(app.database.db);
        const result = await app.services.tenants.migrateAll();
        console.log(
          `core: ${applied.length} migration(s) applied; tenants: ${result.migrated} migrated, ${result.failed.length} failed`,
        );
        for (const f of result.failed) console.error(`  ${f.slug}: ${f.error}`);
        if (result.failed.length > 0) process.exitCode = 1;
      });
    });

  const tenants = program.command('tenants').description('Manage tenants');
  tenants
    .command('create <slug>')
    .description('Create a tenant and provision its schema')
    .option('--name <name>', 'display name (default: the slug)')
    .action(async (slug: string, options: { name?: string }) => {
      await withApp({}, async (app) => {
        const tenant = await app.services.tenants.create({ slug, name: options.name ?? slug });
        console.log(JSON.stringify(tenant, null, 2));
      });
    });
  tenants
    .command('list')
    .description('List tenants')
    .action(async () => {
      await withApp({}, async (app) => {
        const page = await app.services.tenants.list({ limit: 100, offset: 0 });
        for (const t of page.items) console.log(`${t.id}  ${t.slug.padEnd(40)}  ${t.status}`);
        if (page.total > page.items.length) console.log(`… ${page.total - page.items.length} more`);
      });
    });
  tenants
    .command('purge')
    .description('Purge deleted tenants past their retention window now')
    .action(async () => {
      await withApp({}, async (app) => {
        const purged = await app.services.tenants.purgeExpired();
        console.log(purged.length > 0 ? `purged: ${purged.join(', ')}` : 'nothing to purge');
      });
    });

  const secrets = program.command('secrets').description('Manage encrypted secrets');
  secrets
    .command('rotate')
    .description('Re-wrap every stored secret with the first key of PLEXICA_MASTER_KEY')
    .action(async () => {
      await withApp({}, async (app) => {
        const bar = new SingleBar({ format: 'rotating [{bar}] {percentage}% | {value}/{total} secrets' });
        let started = false;
        const result = await app.services.secrets.rotate((done, total) => {
          if (!started) {
            bar.start(total, 0);
            started = true;
          }
          bar.update(done);
        });
        if (started) bar.stop();
        console.log(
          `re-wrapped ${result.rewrapped} of ${result.total} secret(s) under key ${app.services.secrets.activeKeyId}`,
        );
        for (const f of result.failed) {
          console.error(
            `  secret ${f.id}: wrapped by master key ${f.keyId}, which is not in PLEXICA_MASTER_KEY`,
          );
        }
        if (result.failed.length > 0) process.exitCode = 1;
      });
    });

  program
    .command('keys:generate')
    .description('Print a new random master key for PLEXICA_MASTER_KEY')
    .action(() => {
      console.log(randomBytes(32).toString('base64'));
    });

  addJobCommands(program);
  addEventCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (err) {
    if (err instanceof ConfigError) console.error(err.message);
    else if (isPlexicaError(err)) console.error(`${err.code}: ${err.message}`);
    else if (err instanceof Error) console.error(err.message);
    else console.error(err);
    process.exit(1);
  }
}
