import { WalflowError, type DispatchBatch, type WalflowDatabase } from '@walflow/core';
import { sql, type RawBuilder, type Transaction } from 'kysely';

/** Far beyond the gap (microseconds, milliseconds on a busy machine); past it the batch fails and is delivered again. */
const WRITERS_TIMEOUT_MS = 10_000;
const RECHECK_MS = 1;

/** The outbox rows a batch records (as events or dead letters) and deletes, and the transactions that wrote them. */
export interface BatchOutboxRows {
  ids: string[];
  /** Each writing transaction once. */
  writers: string[];
}

/**
 * Logical decoding can hand walflow a transaction before PostgreSQL shows it to other sessions: the walsender
 * sends a commit once its WAL is flushed, and the committing backend leaves the list of running transactions
 * only after that (on a busy machine, milliseconds later). A DELETE in that gap does not see the outbox row,
 * which would then stay behind its recorded event for ever, and the outbox would no longer hold exactly the
 * events not yet recorded (its oldest row is the lag health reports). So the outbox rows are deleted only by
 * a statement that starts once every writer is visible.
 */
export function batchOutboxRows(batch: DispatchBatch): BatchOutboxRows {
  const ids = batch.events.map((event) => event.id);
  const writers = new Set(batch.events.map((event) => event.xid));
  for (const row of batch.parked) {
    if (row.outboxId === null) continue;
    ids.push(row.outboxId);
    writers.add(row.commit.xid);
  }
  return { ids, writers: [...writers] };
}

/**
 * How many of these transactions the current statement's snapshot still counts as running: listed in it, or
 * not below its horizon (compared by age, which is wraparound-safe for transactions this recent).
 */
export function runningWriters(xids: readonly string[]): RawBuilder<number> {
  // The running list is read once (an uncorrelated subquery is hashed), not once per writer.
  return sql<number>`(SELECT count(*)::int FROM unnest(${xids}::xid[]) AS w(x), pg_current_snapshot() AS snap
                       WHERE age(w.x) <= age(xid(pg_snapshot_xmax(snap)))
                          OR w.x IN (SELECT xid(s) FROM pg_snapshot_xip(pg_current_snapshot()) AS s))`;
}

/**
 * Returns once a statement of this transaction sees every writer committed; a later statement (each takes a
 * new snapshot under READ COMMITTED) then sees their outbox rows.
 */
export async function waitForWriters(trx: Transaction<WalflowDatabase>, xids: readonly string[]): Promise<void> {
  const deadline = Date.now() + WRITERS_TIMEOUT_MS;
  for (;;) {
    const { rows } = await sql<{ running: number }>`SELECT ${runningWriters(xids)} AS running`.execute(trx);
    if (rows[0]!.running === 0) return;
    if (Date.now() > deadline) {
      throw new WalflowError('commit_not_visible', `${rows[0]!.running} transaction(s) whose commit was decoded are still not visible after ${WRITERS_TIMEOUT_MS} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, RECHECK_MS));
  }
}
