import type { Kysely } from 'kysely';

/**
 * A database transaction that also carries what must happen once it has
 * committed (hand jobs to an engine outside the database, publish what the
 * outbox holds, wake workers). Services that write inside a caller's
 * transaction take one of these and register their after-commit step on it,
 * so the caller cannot forget to call it, and it never runs for a rollback.
 */
// biome-ignore lint/suspicious/noExplicitAny: the untyped handle, as `Executor`
export interface Transaction<DB = any> {
  /** The transaction handle: every statement of the unit of work goes through it. */
  readonly db: Kysely<DB>;
  /**
   * Runs `step` after the commit, in registration order. A step that throws makes the
   * call reject once every step ran; what committed stays committed.
   */
  afterCommit(step: () => Promise<void>): void;
}

/**
 * Runs `work` in one transaction, then its after-commit steps.
 *
 * @example
 * await inTransaction(db, async (tx) => {
 *   await tx.db.insertInto('core.things').values(thing).execute();
 *   await jobs.enqueueIn(tx, ctx, { type: 'things.index', data: { id: thing.id } });
 * });
 */
// biome-ignore lint/suspicious/noExplicitAny: the untyped handle, as `Executor`
export async function inTransaction<T, DB = any>(
  db: Kysely<DB>,
  work: (tx: Transaction<DB>) => Promise<T>,
): Promise<T> {
  const steps: (() => Promise<void>)[] = [];
  const result = await db.transaction().execute((trx) =>
    work({
      db: trx,
      afterCommit: (step) => {
        steps.push(step);
      },
    }),
  );
  // committed: one failing step must not keep the others from running
  const failures: unknown[] = [];
  for (const step of steps) await step().catch((err: unknown) => failures.push(err));
  if (failures.length > 0) throw failures[0];
  return result;
}
