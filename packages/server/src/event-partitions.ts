import type { WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';

/**
 * How long making a partition waits for the event log's lock. `CREATE TABLE … PARTITION OF` locks the whole log
 * (ACCESS EXCLUSIVE), and while it waits behind a long reader (a console backtest, a replay's dry run) every
 * dispatch and claim that touches the log queues behind it: better to give up and make the day at the next
 * maintenance, days ahead of its first event.
 */
const PARTITION_LOCK_TIMEOUT = '1s';

/**
 * Creates the event log's daily partitions from yesterday to a week ahead, so that rows do not fall into the
 * default partition. A failure is only logged: events still have the default partition to go to, and the next
 * maintenance tries again.
 */
export async function ensureEventPartitions(db: Kysely<WalflowDatabase>, logger: Logger): Promise<void> {
  try {
    await db.transaction().execute(async (trx) => {
      await sql`SET LOCAL lock_timeout = ${sql.lit(PARTITION_LOCK_TIMEOUT)}`.execute(trx);
      await sql`SELECT walflow.ensure_event_partitions()`.execute(trx);
    });
  } catch (error) {
    logger.warn({ err: error }, 'could not create event partitions; trying again at the next maintenance');
  }
}

/**
 * The same for a repair, which is about to record a backlog that may hold days no partition was made for (a
 * restore older than a week): recorded into the default partition, their rows would keep those days from ever
 * having one. So it waits for the log's lock however long, and fails rather than go on without them.
 */
export async function requireEventPartitions(db: Kysely<WalflowDatabase>): Promise<void> {
  await sql`SELECT walflow.ensure_event_partitions()`.execute(db);
}
