import type { WalflowDatabase } from '@walflow/core';
import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import { anyUuid } from './any-uuid.js';
import { RUNS_QUEUED_CHANNEL } from './run-queue.js';

// Runs given back to the queue before they were executed: their attempts are not counted.

/**
 * Of leased runs about to start, those whose workflow is paused now (since their claim) go back to the queue
 * unstarted, their attempts not counted; the queue holds them until the workflow is resumed (migration 0039).
 * Returns their ids. Call once the leases are checked (holdsLease, or extendLeases in the same transaction).
 */
export async function holdRunsOfPausedWorkflows(trx: Transaction<WalflowDatabase>, runIds: readonly string[]): Promise<Set<string>> {
  const { rows } = await sql<{ id: string }>`
    UPDATE walflow.workflow_runs r
       SET status = 'queued', attempts = greatest(r.attempts - 1, 0), next_attempt_at = now(), locked_by = NULL, locked_until = NULL
      FROM walflow.workflows w
     WHERE w.id = r.workflow_id AND w.status = 'paused' AND r.id = ${anyUuid(runIds)}
    RETURNING r.id`.execute(trx);
  return new Set(rows.map((row) => row.id));
}

/**
 * Hands back the runs a stopping worker pool still holds (`locked_by` starting with its id): queued again at
 * once, the interrupted attempt not counted. Runs whose outcome is being written right now are skipped; that
 * write finishes them. Workers elsewhere are woken for the runs handed back.
 */
export async function releaseHeldRuns(db: Kysely<WalflowDatabase>, poolId: string): Promise<number> {
  return handBack(db, sql<boolean>`starts_with(locked_by, ${`${poolId}/`})`);
}

/**
 * Hands back, inside the claim that leased them, runs a worker will not start because its pool is stopping: they
 * leave with the claim's commit, whether or not the pool's connections outlive it.
 */
export async function releaseLeasedRuns(trx: Transaction<WalflowDatabase>, runIds: readonly string[], workerId: string): Promise<number> {
  return handBack(trx, sql<boolean>`id = ${anyUuid(runIds)} AND locked_by = ${workerId}`);
}

async function handBack(db: Kysely<WalflowDatabase>, which: RawBuilder<boolean>): Promise<number> {
  const { rows } = await sql<{ released: number }>`
    WITH held AS (
      SELECT id FROM walflow.workflow_runs
       WHERE status = 'running' AND ${which}
       FOR UPDATE SKIP LOCKED
    ), released AS (
      UPDATE walflow.workflow_runs r
         SET status = 'queued', attempts = greatest(r.attempts - 1, 0), next_attempt_at = now(),
             locked_by = NULL, locked_until = NULL, last_error = 'released by a worker that shut down'
        FROM held WHERE r.id = held.id
      RETURNING r.id
    )
    SELECT count(*)::int AS released FROM released`.execute(db);
  const released = rows[0]?.released ?? 0;
  if (released > 0) await sql`SELECT pg_notify(${RUNS_QUEUED_CHANNEL}, '')`.execute(db);
  return released;
}
