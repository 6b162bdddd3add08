import type { WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';

/**
 * Makes due again the queued runs left out of the due range (`next_attempt_at` 'infinity') whose workflow is no
 * longer paused. Pausing moves a workflow's queued runs there and resuming brings them back (migration 0039), but
 * a run queued again while the workflow is paused (a retry, a lease run out) is moved there by its own
 * transaction: when the resume commits before it, the resume cannot see the run as queued, and the run would stay
 * out of reach for ever, holding up every later run of its aggregate. A run of a workflow deleted meanwhile comes
 * back too, for the claim to cancel. The queue's index ends at 'infinity', so this reads only such runs.
 * Returns how many it made due.
 */
export async function releaseStrandedRuns(db: Kysely<WalflowDatabase>): Promise<number> {
  const { rows } = await sql<{ id: string }>`
    UPDATE walflow.workflow_runs r SET next_attempt_at = now()
      FROM (SELECT f.id FROM walflow.workflow_runs f
             WHERE f.status = 'queued' AND f.next_attempt_at = 'infinity'
               AND NOT EXISTS (SELECT FROM walflow.workflows w WHERE w.id = f.workflow_id AND w.status = 'paused')
               FOR UPDATE OF f SKIP LOCKED) stranded
     WHERE r.id = stranded.id
       -- Read again under a share lock of the workflow's row: a pause committing meanwhile is waited for and seen
       -- (it passed over the run, already out of the due range), and one that comes after waits for this commit
       -- and then moves the run out again.
       AND (SELECT w.status FROM walflow.workflows w WHERE w.id = r.workflow_id FOR SHARE) IS DISTINCT FROM 'paused'
    RETURNING r.id`.execute(db);
  return rows.length;
}
