import { randomBytes } from 'node:crypto';
import { SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError } from 'commander';
import { type App, createApp, migrateCore } from '../app/create-app.js';
import { exitOnSignals } from '../app/shutdown.js';
import { ConfigError, loadConfig, type PlexicaConfig, ROLES, type Role } from '../config/index.js';
import { isPlexicaError } from '../infra/errors.js';
import { addEventCommands } from './events.js';
import { addJobCommands } from './jobs.js';
import { addSearchCommands } from './search.js';

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

const parsePort = (value: string): number => {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65_535)
    throw new InvalidArgumentError(`must be an integer from 0 to 65535 (got ${value})`);
  return port;
};

/** A listen failure said in terms of the setting to change. */
function explainStartError(err: unknown, config: PlexicaConfig): unknown {
  const code = (err as { code?: string }).code;
  if (code === 'EADDRINUSE')
    return new Error(
      `port ${config.port} on ${config.host} is in use by another process (EADDRINUSE): ` +
        'stop it, or choose another port with PLEXICA_PORT or --port',
      { cause: err },
    );
  if (code === 'EACCES')
    return new Error(
      `no permission to listen on port ${config.port} (EACCES): ports below 1024 need privileges; ` +
        'choose another with PLEXICA_PORT or --port',
      { cause: err },
    );
  return err;
}

export function buildCli(): Command {
  const program = new Command('plexica').description('Multi-tenant platform core').showHelpAfterError();

  program
    .command('start')
    .description('Start Plexica (API, workers and scheduler unless --role says otherwise)')
    .option('--role <role>', `one of ${ROLES.join(', ')}`, parseRole)
    .option('--port <port>', 'HTTP port (overrides PLEXICA_PORT)', parsePort)
    .action(async (options: { role?: Role; port?: number }) => {
      const config = loadConfig(process.env, {
        ...(options.role && { role: options.role }),
        ...(options.port !== undefined && { port: options.port }),
      });
      const app = await createApp(config);
      const address = await app.start().catch(async (err: unknown) => {
        // release the data dir and connections before saying why
        await app.close().catch(() => {});
        throw explainStartError(err, config);
      });
      app.logger.info({ address, role: config.role, database: app.database.kind }, 'plexica started');
      exitOnSignals(app);
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
    .command('admin')
    .description('Operator recovery')
    .command('reset-password <email>')
    .description(
      'Give the super admin with this email (or, with --tenant, that tenant user) a new generated ' +
        'password, printed once, and end every session of theirs',
    )
    .option('--tenant <slug>', 'the tenant of the user (default: a super admin)')
    .action(async (email: string, options: { tenant?: string }) => {
      await withApp({}, async (app) => {
        const { password } = await app.services.passwords.reset(email, options.tenant);
        console.log(`new password for ${email}${options.tenant ? ` in ${options.tenant}` : ''}: ${password}`);
        console.log('(shown once; every session of this user has ended)');
      });
    });

  program
    .command('keys:generate')
    .description('Print a new random master key for PLEXICA_MASTER_KEY')
    .action(() => {
      console.log(randomBytes(32).toString('base64'));
    });

  addJobCommands(program);

  addSearchCommands(program);
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
