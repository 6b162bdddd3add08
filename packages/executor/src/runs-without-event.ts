import type { WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';
import { anyUuid } from './any-uuid.js';

/** How many of the first due runs, and of the runs whose lease ran out, each sweep looks at. */
const SWEPT_HEAD = 1000;

/** The last error of a run cancelled because its event is gone. */
export const EVENT_GONE = 'its event is gone from walflow.events (a partition dropped or truncated by hand)';

/**
 * Cancels runs whose event is no longer in walflow.events. Prune and row deletes keep the events of unfinished
 * runs (migration 0026), but dropping or truncating a partition bypasses that, and a claim hands a worker only
 * runs with their event. Such a run that a claim would hold stays queued for ever at the head of the queue,
 * taken and left by every claim, and enough of them leave no room in any claim for the runs behind them; one a
 * claim leases (it calls out, or its workflow has a concurrency limit) waits out its lease as `running`, then
 * would be queued again, or end dead as if its worker had died. So the sweep looks at the head of the queue and
 * at the runs whose lease ran out (before they are released): a lookup per run, however long the queue. Runs a
 * claim holds right now are left for the next sweep. Returns how many it cancelled.
 */
export async function cancelRunsWithoutEvent(db: Kysely<WalflowDatabase>): Promise<number> {
  // Each run's event through the key of its day's partition; OFFSET 0 keeps it a lookup per run.
  const { rows: orphans } = await sql<{ id: string }>`
    WITH head AS (
      (SELECT r.id, r.event_id, r.event_committed_at FROM walflow.workflow_runs r
        WHERE r.status = 'queued' AND r.next_attempt_at <= now()
        ORDER BY r.next_attempt_at LIMIT ${SWEPT_HEAD})
      UNION ALL
      (SELECT r.id, r.event_id, r.event_committed_at FROM walflow.workflow_runs r
        WHERE r.status = 'running' AND r.locked_until < now()
        ORDER BY r.locked_until LIMIT ${SWEPT_HEAD})
    )
    SELECT h.id FROM head h
     WHERE NOT EXISTS (SELECT FROM walflow.events e WHERE e.committed_at = h.event_committed_at AND e.id = h.event_id OFFSET 0)`.execute(db);
  // The common case ends here. A statement of its own, by key: a semi-join with the head let the planner scan
  // every run, seconds on a large history.
  if (orphans.length === 0) return 0;
  const { rows } = await sql<{ id: string }>`
    UPDATE walflow.workflow_runs r
       SET status = 'cancelled', finished_at = now(), last_error = ${EVENT_GONE}, locked_by = NULL, locked_until = NULL
      FROM (SELECT f.id FROM walflow.workflow_runs f
             WHERE f.id = ${anyUuid(orphans.map((orphan) => orphan.id))}
               AND (f.status = 'queued' OR (f.status = 'running' AND f.locked_until < now()))
               FOR UPDATE SKIP LOCKED) orphaned
     WHERE r.id = orphaned.id
    RETURNING r.id`.execute(db);
  return rows.length;
}
