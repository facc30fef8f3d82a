/**
 * A database that cannot be reached at start, said in terms of the setting to
 * fix: PLEXICA_DATABASE_URL, with the URL (password hidden) and what PostgreSQL
 * or the network answered, instead of a bare `ECONNREFUSED` or `3D000`.
 */
export class DatabaseConnectError extends Error {
  constructor(url: string, cause: unknown) {
    super(`PLEXICA_DATABASE_URL: cannot connect to ${redact(url)}: ${reasonOf(url, cause)}`, { cause });
    this.name = 'DatabaseConnectError';
  }
}

const redact = (url: string): string => {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'an unparsable URL';
  }
};

function reasonOf(url: string, cause: unknown): string {
  const err = cause as { code?: string; message?: string; errors?: { code?: string }[] };
  // a host with several addresses (localhost: ::1 and 127.0.0.1) fails with an AggregateError
  const code = err.code ?? err.errors?.[0]?.code;
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    // reported by redact
  }
  const database = parsed?.pathname.slice(1) || parsed?.username || 'the database';
  switch (code) {
    case 'ECONNREFUSED':
      return `nothing listens at ${parsed?.host ?? 'that address'} (is PostgreSQL running there?)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `host ${parsed?.hostname ?? ''} not found`;
    case 'ETIMEDOUT':
      return 'the connection timed out';
    case '3D000':
      return `database "${database}" does not exist: create it first (createdb ${database})`;
    case '28000':
      return `${err.message ?? 'role does not exist'} (create the role, or fix the user in the URL)`;
    case '28P01':
      return `${err.message ?? 'password authentication failed'} (check the password in the URL)`;
    default:
      return err.message ?? String(cause);
  }
}
