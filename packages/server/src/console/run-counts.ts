import type { RunStatus, WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';

export interface RunCounts {
  /** Queued, running and dead: all of them. Succeeded and cancelled: created since the window's start. */
  runs: Record<RunStatus, number>;
  openDeadLetters: number;
}

/**
 * The overview's counts, as the operator may see them (read through their scope). Unfinished and dead runs
 * are counted through their partial indexes; finished ones only for the window, which the index on
 * created_at keeps cheap however long the retention.
 */
export async function runCounts(db: Kysely<WalflowDatabase>, since: Date): Promise<RunCounts> {
  const { rows } = await sql<{ status: RunStatus; n: number }>`
    SELECT status, count(*)::int AS n FROM walflow.workflow_runs WHERE status IN ('queued', 'running', 'dead') GROUP BY status
    UNION ALL
    SELECT status, count(*)::int AS n FROM walflow.workflow_runs
     WHERE status IN ('succeeded', 'cancelled') AND created_at >= ${since} GROUP BY status`.execute(db);
  const letters = await db
    .selectFrom('walflow.dead_letters')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('resolved_at', 'is', null)
    .executeTakeFirstOrThrow();
  const runs: Record<RunStatus, number> = { queued: 0, running: 0, succeeded: 0, dead: 0, cancelled: 0 };
  for (const row of rows) runs[row.status] = row.n;
  return { runs, openDeadLetters: letters.n };
}
