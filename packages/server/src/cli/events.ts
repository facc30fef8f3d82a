import { createClient, type PlatformEvent, type PlexicaClient } from '@plexica/sdk';
import { type Command, InvalidArgumentError } from 'commander';
import { explained } from './jobs.js';

const connection = (command: Command) =>
  command
    .option('--url <url>', 'where Plexica listens', process.env.PLEXICA_PUBLIC_URL ?? 'http://127.0.0.1:8080')
    .option('--token <token>', 'access token or API key (default: $PLEXICA_TOKEN)')
    .option('--tenant <tenant>', 'tenant id or slug (super admins)');

const clientOf = (command: Command): PlexicaClient => {
  const { url, token, tenant } = command.opts<{ url: string; token?: string; tenant?: string }>();
  const credential = token ?? process.env.PLEXICA_TOKEN;
  if (!credential) throw new Error('give --token or set PLEXICA_TOKEN (an access token or a plx_ API key)');
  return createClient({ baseUrl: url, token: credential, ...(tenant && { tenant }) });
};

const positive = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
};

const line = (e: PlatformEvent) =>
  `${e.createdAt} ${e.type}${e.entityId ? ` ${e.entityType}/${e.entityId}` : ''} ${JSON.stringify(e.data)}`;

/** `plexica events tail` and `plexica webhooks deliveries <endpoint>`, through `@plexica/sdk`. */
export function addEventCommands(program: Command): void {
  const events = connection(program.command('events').description("Follow the tenant's event log"));
  events
    .command('tail')
    .description('Print the latest events, then new ones as they come (Ctrl-C stops)')
    .option('--type <type>', 'only this event type')
    .option('-n, --lines <n>', 'how many earlier events to print first', positive, 10)
    .option('--interval <ms>', 'how often to look for new events', positive, 1000)
    .option('--once', 'print the latest and stop')
    .action(
      explained(async (options: { type?: string; lines: number; interval: number; once?: boolean }) => {
        const plexica = clientOf(events);
        const filter = options.type ? { type: options.type } : {};
        const first = await plexica.events.list({ ...filter, limit: Math.min(100, options.lines) });
        for (const e of [...first.data].reverse()) console.log(line(e));
        const seen = new Set(first.data.map((e) => e.id));
        while (!options.once) {
          await new Promise((resolve) => setTimeout(resolve, options.interval));
          const page = await plexica.events.list({ ...filter, limit: 100 });
          for (const e of [...page.data].reverse()) {
            if (seen.has(e.id)) continue;
            seen.add(e.id);
            console.log(line(e));
          }
        }
      }),
    );

  const webhooks = connection(program.command('webhooks').description('Inspect webhook endpoints'));
  webhooks
    .command('deliveries <endpoint>')
    .description("An endpoint's latest deliveries with each attempt's status, latency and error")
    .option('--limit <n>', 'how many deliveries', positive, 20)
    .action(
      explained(async (endpoint: string, options: { limit: number }) => {
        const deliveries = await clientOf(webhooks).webhooks.deliveries(endpoint, options.limit);
        for (const d of deliveries) {
          console.log(`${d.createdAt} ${d.id} ${d.eventType} ${d.status}`);
          for (const a of d.attempts)
            console.log(
              `  #${a.attempt} ${a.responseStatus ?? '—'} ${a.latencyMs} ms${a.error ? ` ${a.error}` : ''}`,
            );
        }
      }),
    );
}
