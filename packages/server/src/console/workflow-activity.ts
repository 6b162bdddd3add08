import type { DecisionOutcome, RunStatus, WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';

export interface RecentRun {
  id: string;
  status: RunStatus;
  eventId: string;
  createdAt: string;
}

/** What each workflow did in a recent window: its latest runs, runs by status, live decisions by outcome. */
export interface WorkflowActivity {
  lastRuns: RecentRun[];
  runs: Partial<Record<RunStatus, number>>;
  decisions: Partial<Record<DecisionOutcome, number>>;
}

const LAST_RUNS = 5;

/**
 * Activity since `since` per workflow id, in three grouped queries over the window (the block-range indexes
 * on created_at and decided_at keep them to the window's rows). Replays' decisions are left out: these are
 * the counts of live traffic.
 */
export async function workflowActivity(db: Kysely<WalflowDatabase>, since: Date): Promise<Map<string, WorkflowActivity>> {
  const [lastRuns, runCounts, decisionCounts] = await Promise.all([
    sql<{ workflow_id: string; id: string; status: RunStatus; event_id: string; created_at: string }>`
      SELECT workflow_id, id, status, event_id, created_at FROM (
        SELECT workflow_id, id, status, event_id, to_json(created_at) #>> '{}' AS created_at,
               row_number() OVER (PARTITION BY workflow_id ORDER BY created_at DESC, id DESC) AS n
          FROM walflow.workflow_runs WHERE created_at >= ${since}) recent
       WHERE n <= ${LAST_RUNS} ORDER BY workflow_id, n`.execute(db),
    sql<{ workflow_id: string; status: RunStatus; n: number }>`
      SELECT workflow_id, status, count(*)::int AS n FROM walflow.workflow_runs WHERE created_at >= ${since} GROUP BY 1, 2`.execute(db),
    sql<{ workflow_id: string; outcome: DecisionOutcome; n: number }>`
      SELECT workflow_id, outcome, count(*)::int AS n FROM walflow.decisions
       WHERE decided_at >= ${since} AND replay_id IS NULL GROUP BY 1, 2`.execute(db),
  ]);
  const activity = new Map<string, WorkflowActivity>();
  const of = (workflowId: string): WorkflowActivity => {
    let entry = activity.get(workflowId);
    if (!entry) activity.set(workflowId, (entry = { lastRuns: [], runs: {}, decisions: {} }));
    return entry;
  };
  for (const row of lastRuns.rows) of(row.workflow_id).lastRuns.push({ id: row.id, status: row.status, eventId: row.event_id, createdAt: row.created_at });
  for (const row of runCounts.rows) of(row.workflow_id).runs[row.status] = row.n;
  for (const row of decisionCounts.rows) of(row.workflow_id).decisions[row.outcome] = row.n;
  return activity;
}

/** Dead runs among the finished ones (succeeded or dead); null when none finished. */
export function failureRate(runs: WorkflowActivity['runs']): number | null {
  const dead = runs.dead ?? 0;
  const finished = dead + (runs.succeeded ?? 0);
  return finished === 0 ? null : dead / finished;
}
