import { createClient, type PlexicaClient } from '@plexica/sdk';
import type { Command } from 'commander';
import { explained, report, watch } from './jobs.js';

/** `plexica search …`: queries and reindexes a running Plexica through `@plexica/sdk`. */
export function addSearchCommands(program: Command): void {
  const search = program
    .command('search')
    .description('Search the tenant’s documents and rebuild indexes on a running Plexica')
    .option('--url <url>', 'where Plexica listens', process.env.PLEXICA_PUBLIC_URL ?? 'http://127.0.0.1:8080')
    .option('--token <token>', 'access token or API key (default: $PLEXICA_TOKEN)')
    .option('--tenant <tenant>', 'tenant id or slug (super admins)');
  const client = (): PlexicaClient => {
    const { url, token, tenant } = search.opts<{ url: string; token?: string; tenant?: string }>();
    const credential = token ?? process.env.PLEXICA_TOKEN;
    if (!credential) throw new Error('give --token or set PLEXICA_TOKEN (an access token or a plx_ API key)');
    return createClient({ baseUrl: url, token: credential, ...(tenant && { tenant }) });
  };

  search
    .command('query <q>')
    .description('Run a query (words, "phrases", -word, OR) and print the ranked hits')
    .option('--type <type...>', 'only these types (crm:contact …)')
    .option('--limit <n>', 'hits to print (1–100)', '20')
    .action(
      explained(async (q: string, options: { type?: string[]; limit: string }) => {
        const limit = Number(options.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new Error('--limit is 1 to 100');
        const result = await client().search.query({
          q,
          limit,
          ...(options.type && { types: options.type }),
        });
        for (const hit of result.items)
          console.log(`${hit.score.toFixed(3)}  ${hit.type}/${hit.id}  ${hit.title}`);
        console.log(`${result.totalExact ? '' : 'at least '}${result.total} found`);
        if (result.didYouMean) console.log(`did you mean: ${result.didYouMean}`);
      }),
    );

  search
    .command('reindex <type>')
    .description('Rebuild a type’s index in a background job, with a progress bar')
    .option('--no-watch', 'print the job id and return')
    .action(
      explained(async (type: string, options: { watch: boolean }) => {
        const plexica = client();
        const job = await plexica.search.reindex(type);
        if (!options.watch) {
          console.log(job.id);
          return;
        }
        report(await watch(plexica, job.id));
      }),
    );
}
