import type { WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';

/** How many of the first due runs each sweep looks at: where such runs would stall every claim. */
const SWEPT_HEAD = 1000;

const EVENT_GONE = 'its event is gone from walflow.events (a partition dropped or truncated by hand)';

/**
 * Cancels queued runs whose event is no longer in walflow.events. Prune and row deletes keep the events of
 * unfinished runs (migration 0026), but dropping or truncating a partition bypasses that; a claim never hands
 * such a run to a worker, which only ever sees runs with their event, so it would stay queued for ever at the
 * head of the queue, taken and left by every claim, and enough of them would leave no room in any claim for the
 * runs behind them. Only the head of the queue is looked at, where they stall claims: a lookup per run, however
 * long the queue. Runs a claim holds right now are left for the next sweep. Returns how many it cancelled.
 */
export async function cancelRunsWithoutEvent(db: Kysely<WalflowDatabase>): Promise<number> {
  // Each run's event through the key of its day's partition; OFFSET 0 keeps it a lookup per run.
  const { rows } = await sql<{ cancelled: number }>`
    WITH head AS (
      SELECT r.id, r.event_id, r.event_committed_at FROM walflow.workflow_runs r
       WHERE r.status = 'queued' AND r.next_attempt_at <= now()
       ORDER BY r.next_attempt_at
       LIMIT ${SWEPT_HEAD}
    ), orphaned AS (
      SELECT r.id FROM walflow.workflow_runs r
       WHERE r.id IN (SELECT h.id FROM head h
                       WHERE NOT EXISTS (SELECT FROM walflow.events e
                                          WHERE e.committed_at = h.event_committed_at AND e.id = h.event_id OFFSET 0))
         AND r.status = 'queued'
         FOR UPDATE SKIP LOCKED
    ), cancelled AS (
      UPDATE walflow.workflow_runs r
         SET status = 'cancelled', finished_at = now(), last_error = ${EVENT_GONE}, locked_by = NULL, locked_until = NULL
        FROM orphaned WHERE r.id = orphaned.id
      RETURNING r.id
    )
    SELECT count(*)::int AS cancelled FROM cancelled`.execute(db);
  return rows[0]?.cancelled ?? 0;
}
