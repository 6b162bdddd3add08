import type { WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';

/**
 * Creates the event log's daily partitions from yesterday to a week ahead, so that rows do not fall into the
 * default partition. A failure is only logged: events still have the default partition to go to.
 */
export async function ensureEventPartitions(db: Kysely<WalflowDatabase>, logger: Logger): Promise<void> {
  try {
    await sql`SELECT walflow.ensure_event_partitions()`.execute(db);
  } catch (error) {
    logger.warn({ err: error }, 'could not create event partitions');
  }
}
