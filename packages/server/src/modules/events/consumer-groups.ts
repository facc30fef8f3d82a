import { type Kysely, sql } from 'kysely';
import type { Executor } from '../../infra/database/index.js';
import { PlexicaError } from '../../infra/errors.js';
import type { EventsTables } from './tables.js';

/** A consumer group as its members last subscribed it. */
export interface ConsumerGroup {
  name: string;
  topics: string[];
  /** When a member last subscribed (any process). */
  subscribedAt: Date;
}

/**
 * The groups that ever subscribed, in the database whatever the engine: a
 * replay names a group, and the engine alone cannot say which topics it
 * follows (a Redis consumer group has none) or whether it exists at all.
 */
export interface ConsumerGroupStore {
  /** Called at each subscribe; the latest topics win. */
  record(name: string, topics: string[]): Promise<void>;
  list(): Promise<ConsumerGroup[]>;
  /** @throws PLX_EVENT_GROUP_NOT_FOUND */
  get(name: string): Promise<ConsumerGroup>;
}

export function createConsumerGroupStore(executor: Executor): ConsumerGroupStore {
  const db: Kysely<EventsTables> = executor;
  const toGroup = (r: { name: string; topics: string[]; subscribed_at: Date }): ConsumerGroup => ({
    name: r.name,
    topics: r.topics,
    subscribedAt: r.subscribed_at,
  });
  return {
    async record(name, topics) {
      await db
        .insertInto('core.event_consumer_groups')
        .values({ name, topics })
        .onConflict((oc) =>
          oc.column('name').doUpdateSet({ topics: sql`excluded.topics`, subscribed_at: sql`now()` }),
        )
        .execute();
    },
    async list() {
      const rows = await db.selectFrom('core.event_consumer_groups').selectAll().orderBy('name').execute();
      return rows.map(toGroup);
    },
    async get(name) {
      const row = await db
        .selectFrom('core.event_consumer_groups')
        .selectAll()
        .where('name', '=', name)
        .executeTakeFirst();
      if (!row)
        throw new PlexicaError('PLX_EVENT_GROUP_NOT_FOUND', {
          detail: `no consumer group "${name.slice(0, 200)}" has subscribed`,
        });
      return toGroup(row);
    },
  };
}
