import { createClient, type Job, PlexicaApiError, type PlexicaClient } from '@plexica/sdk';
import { SingleBar } from 'cli-progress';
import { type Command, InvalidArgumentError, Option } from 'commander';

type JobStatus = Job['status'];
const STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const satisfies JobStatus[];
const SETTLED: ReadonlySet<JobStatus> = new Set(['completed', 'failed', 'cancelled']);

/** Follows a job with a live progress bar until it settles. @returns the last status */
async function watch(plexica: PlexicaClient, id: string): Promise<Job> {
  const bar = new SingleBar({
    format: 'job {type} [{bar}] {percentage}% | {status} | attempt {attempts}/{maxAttempts}',
    hideCursor: true,
  });
  let job = await plexica.jobs.get(id);
  bar.start(100, job.progress, job);
  while (!SETTLED.has(job.status)) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    job = await plexica.jobs.get(id);
    bar.update(job.progress, job);
  }
  bar.stop();
  return job;
}

const report = (job: Job) => {
  if (job.status === 'completed') {
    console.log(`completed: ${JSON.stringify(job.result)}`);
  } else {
    console.error(`${job.status}${job.lastError ? `: ${job.lastError}` : ''}`);
    process.exitCode = 1;
  }
};

const parseLimit = (value: string): number => {
  const limit = Number(value);
  if (!Number.isInteger(limit) || limit < 1) throw new InvalidArgumentError('must be a positive integer');
  return limit;
};

/**
 * A refused call as one line naming its catalogue code (`PLX_JOB_NOT_CANCELLABLE: …`),
 * or the status when the answer was not a problem document; `main` prints it and exits 1.
 */
export function explained<A extends unknown[]>(action: (...args: A) => Promise<void>) {
  return async (...args: A) => {
    try {
      await action(...args);
    } catch (err) {
      if (!(err instanceof PlexicaApiError)) throw err;
      const { code, detail, title } = err.problem;
      throw new Error(`${String(code ?? err.status)}: ${String(detail ?? title ?? '')}`, { cause: err });
    }
  };
}

/**
 * `plexica jobs …`: talks to a running Plexica through `@plexica/sdk` (the
 * embedded database is locked by the server, and workers live there anyway).
 */
export function addJobCommands(program: Command): void {
  const jobs = program
    .command('jobs')
    .description('Enqueue, follow, cancel and retry jobs on a running Plexica')
    .option('--url <url>', 'where Plexica listens', process.env.PLEXICA_PUBLIC_URL ?? 'http://127.0.0.1:8080')
    .option('--token <token>', 'access token or API key (default: $PLEXICA_TOKEN)')
    .option('--tenant <tenant>', 'tenant id or slug (super admins)');
  const client = (): PlexicaClient => {
    const { url, token, tenant } = jobs.opts<{ url: string; token?: string; tenant?: string }>();
    const credential = token ?? process.env.PLEXICA_TOKEN;
    if (!credential) throw new Error('give --token or set PLEXICA_TOKEN (an access token or a plx_ API key)');
    return createClient({ baseUrl: url, token: credential, ...(tenant && { tenant }) });
  };

  jobs
    .command('enqueue <type>')
    .description('Enqueue a job; --watch follows it with a progress bar')
    .option('--data <json>', 'payload as JSON', '{}')
    .option('--watch', 'follow the job until it settles (exit 1 unless it completes)')
    .action(
      explained(async (type: string, options: { data: string; watch?: boolean }) => {
        let data: unknown;
        try {
          data = JSON.parse(options.data);
        } catch {
          throw new Error('--data is not valid JSON');
        }
        const plexica = client();
        const job = await plexica.jobs.enqueue({ type, data });
        console.log(`enqueued ${job.id}`);
        if (options.watch) report(await watch(plexica, job.id));
      }),
    );

  jobs
    .command('watch <id>')
    .description('Follow a job with a progress bar until it settles (exit 1 unless it completes)')
    .action(explained(async (id: string) => report(await watch(client(), id))));

  jobs
    .command('list')
    .description("List the tenant's jobs, newest first")
    .addOption(new Option('--status <status>', 'job status').choices(STATUSES))
    .option('--type <type>', 'job type')
    .option('--limit <n>', 'how many', parseLimit, 20)
    .action(
      explained(async (options: { status?: JobStatus; type?: string; limit: number }) => {
        const page = await client().jobs.list({
          limit: options.limit,
          ...(options.status && { status: options.status }),
          ...(options.type && { type: options.type }),
        });
        for (const job of page.items) {
          console.log(
            [
              job.id,
              job.type.padEnd(24),
              job.status.padEnd(10),
              `${job.progress}%`.padStart(4),
              job.createdAt,
            ].join('  '),
          );
        }
        console.log(`${page.items.length} of ${page.total}`);
      }),
    );

  jobs
    .command('cancel <id>')
    .description('Cancel a pending or running job')
    .action(
      explained(async (id: string) => {
        const job = await client().jobs.cancel(id);
        console.log(`${job.id} ${job.status}`);
      }),
    );

  jobs
    .command('retry <id>')
    .description('Run a failed or cancelled job again')
    .action(
      explained(async (id: string) => {
        const job = await client().jobs.retry(id);
        console.log(`${job.id} ${job.status}`);
      }),
    );
}
