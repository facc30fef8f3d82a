import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';

interface Remote {
  url: string;
  token: string;
  tenant?: string;
}

interface JobView {
  id: string;
  type: string;
  status: string;
  progress: number;
  attempts: number;
  maxAttempts: number;
  lastError: string | null;
  result: unknown;
  createdAt: string;
}

const SETTLED = new Set(['completed', 'failed', 'cancelled']);

/** One call to a running Plexica; a problem document becomes an error naming its code. */
async function call<T>(remote: Remote, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(new URL(path, remote.url), {
    method,
    headers: {
      authorization: `Bearer ${remote.token}`,
      ...(remote.tenant && { 'x-tenant-id': remote.tenant }),
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  const parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  if (!response.ok)
    throw new Error(
      `${String(parsed.code ?? response.status)}: ${String(parsed.detail ?? parsed.title ?? '')}`,
    );
  return parsed as T;
}

/** Follows a job with a live progress bar until it settles. @returns the last status */
async function watch(remote: Remote, id: string): Promise<JobView> {
  const bar = new SingleBar({
    format: 'job {type} [{bar}] {percentage}% | {status} | attempt {attempts}/{maxAttempts}',
    hideCursor: true,
  });
  let job = await call<JobView>(remote, 'GET', `/api/v1/jobs/${id}`);
  bar.start(100, job.progress, job);
  while (!SETTLED.has(job.status)) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    job = await call<JobView>(remote, 'GET', `/api/v1/jobs/${id}`);
    bar.update(job.progress, job);
  }
  bar.stop();
  return job;
}

const report = (job: JobView) => {
  if (job.status === 'completed') {
    console.log(`completed: ${JSON.stringify(job.result)}`);
  } else {
    console.error(`${job.status}${job.lastError ? `: ${job.lastError}` : ''}`);
    process.exitCode = 1;
  }
};

/**
 * `plexica jobs …`: talks to a running Plexica over HTTP (the embedded
 * database is locked by the server, and workers live there anyway).
 */
export function addJobCommands(program: Command): void {
  const jobs = program
    .command('jobs')
    .description('Enqueue, follow, cancel and retry jobs on a running Plexica')
    .option('--url <url>', 'where Plexica listens', process.env.PLEXICA_PUBLIC_URL ?? 'http://127.0.0.1:8080')
    .option('--token <token>', 'access token or API key (default: $PLEXICA_TOKEN)')
    .option('--tenant <tenant>', 'tenant id or slug (super admins)');
  const remote = (): Remote => {
    const { url, token, tenant } = jobs.opts<{ url: string; token?: string; tenant?: string }>();
    const credential = token ?? process.env.PLEXICA_TOKEN;
    if (!credential) throw new Error('give --token or set PLEXICA_TOKEN (an access token or a plx_ API key)');
    return { url, token: credential, ...(tenant && { tenant }) };
  };

  jobs
    .command('enqueue <type>')
    .description('Enqueue a job; --watch follows it with a progress bar')
    .option('--data <json>', 'payload as JSON', '{}')
    .option('--watch', 'follow the job until it settles (exit 1 unless it completes)')
    .action(async (type: string, options: { data: string; watch?: boolean }) => {
      let data: unknown;
      try {
        data = JSON.parse(options.data);
      } catch {
        throw new Error('--data is not valid JSON');
      }
      const job = await call<JobView>(remote(), 'POST', '/api/v1/jobs', { type, data });
      console.log(`enqueued ${job.id}`);
      if (options.watch) report(await watch(remote(), job.id));
    });

  jobs
    .command('watch <id>')
    .description('Follow a job with a progress bar until it settles (exit 1 unless it completes)')
    .action(async (id: string) => report(await watch(remote(), id)));

  jobs
    .command('list')
    .description("List the tenant's jobs, newest first")
    .option('--status <status>', 'pending, running, completed, failed or cancelled')
    .option('--type <type>', 'job type')
    .option('--limit <n>', 'how many', '20')
    .action(async (options: { status?: string; type?: string; limit: string }) => {
      const query = new URLSearchParams({ limit: options.limit });
      if (options.status) query.set('status', options.status);
      if (options.type) query.set('type', options.type);
      const page = await call<{ items: JobView[]; total: number }>(remote(), 'GET', `/api/v1/jobs?${query}`);
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
    });

  for (const [name, method, suffix] of [
    ['cancel', 'DELETE', ''],
    ['retry', 'POST', '/retry'],
  ] as const) {
    jobs
      .command(`${name} <id>`)
      .description(
        name === 'cancel' ? 'Cancel a pending or running job' : 'Run a failed or cancelled job again',
      )
      .action(async (id: string) => {
        const job = await call<JobView>(remote(), method, `/api/v1/jobs/${id}${suffix}`);
        console.log(`${job.id} ${job.status}`);
      });
  }
}
