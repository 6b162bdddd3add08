import { WalflowError, type WalflowDatabase } from '@walflow/core';
import { RUNS_QUEUED_CHANNEL } from '@walflow/executor';
import { sql, type Kysely } from 'kysely';

export interface DeadRun {
  id: string;
  workflowId: string;
  /** Null when the workflow was deleted since. */
  workflow: string | null;
  tenantId: string;
  eventId: string;
  eventType: string;
  attempts: number;
  lastError: string | null;
  finishedAt: Date | null;
}

/** Runs that used up their attempts, newest first. */
export async function listDeadRuns(db: Kysely<WalflowDatabase>, filter: { limit?: number } = {}): Promise<DeadRun[]> {
  const rows = await db
    .selectFrom('walflow.workflow_runs as r')
    .leftJoin('walflow.workflows as w', 'w.id', 'r.workflow_id')
    .select(['r.id', 'r.workflow_id', 'w.name', 'r.tenant_id', 'r.event_id', 'r.event_type', 'r.attempts', 'r.last_error', 'r.finished_at'])
    .where('r.status', '=', 'dead')
    .orderBy('r.finished_at', 'desc')
    .limit(filter.limit ?? 100)
    .execute();
  return rows.map((row) => ({
    id: row.id,
    workflowId: row.workflow_id,
    workflow: row.name,
    tenantId: row.tenant_id,
    eventId: row.event_id,
    eventType: row.event_type,
    attempts: row.attempts,
    lastError: row.last_error,
    finishedAt: row.finished_at,
  }));
}

/**
 * Queues a dead run again, due now, with as many further attempts as its workflow allows a new run. Its
 * attempt count and error stay (explain shows the history), and actions that already succeeded are skipped.
 */
export async function retryDeadRun(db: Kysely<WalflowDatabase>, id: string): Promise<void> {
  const result = await db
    .updateTable('walflow.workflow_runs as r')
    .set({
      status: 'queued',
      next_attempt_at: sql`now()`,
      finished_at: null,
      locked_by: null,
      locked_until: null,
      max_attempts: sql`r.attempts + coalesce((SELECT (w.definition #>> '{retry,maxAttempts}')::integer FROM walflow.workflows w WHERE w.id = r.workflow_id), 1)`,
    })
    .where('r.id', '=', id)
    .where('r.status', '=', 'dead')
    // A queued run needs its event, which prune may be deleting: the lock makes prune wait and then keep it.
    .where(sql<boolean>`EXISTS (SELECT FROM walflow.events e WHERE e.committed_at = r.event_committed_at AND e.id = r.event_id FOR KEY SHARE)`)
    .executeTakeFirst();
  if (result.numUpdatedRows !== 1n) throw await whyNotRetried(db, id);
  // The queue's trigger only notifies inserted runs: wake the workers of every process for this one.
  await sql`SELECT pg_notify(${RUNS_QUEUED_CHANNEL}, '')`.execute(db);
}

/** Closes a dead run without retrying it: it is cancelled, keeps its last error, and no longer counts as dead. */
export async function discardDeadRun(db: Kysely<WalflowDatabase>, id: string): Promise<void> {
  const result = await db.updateTable('walflow.workflow_runs').set({ status: 'cancelled' }).where('id', '=', id).where('status', '=', 'dead').executeTakeFirst();
  if (result.numUpdatedRows !== 1n) throw notDead(id);
}

async function whyNotRetried(db: Kysely<WalflowDatabase>, id: string): Promise<WalflowError> {
  const run = await db.selectFrom('walflow.workflow_runs').select('status').where('id', '=', id).executeTakeFirst();
  return run?.status === 'dead' ? new WalflowError('not_found', `dead run ${id} cannot be retried: its event was pruned`) : notDead(id);
}

function notDead(id: string): WalflowError {
  return new WalflowError('not_found', `no dead run ${id} (retried or discarded already, or pruned)`);
}
