import { storableText, type EventEnvelope, type WalflowDatabase } from '@walflow/core';
import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import { anyUuid } from './any-uuid.js';
import { toEventEnvelope, type EventRow } from './event-row.js';

/**
 * The most of a failure's text a run, an action's outcome and `email.failed` keep (UTF-16 units); a pause's
 * reason keeps 500.
 */
export const ERROR_CHARS = 10_000;

export interface ClaimedRun {
  id: string;
  workflowId: string;
  workflowVersion: number;
  attempts: number;
  maxAttempts: number;
  /** Set when the run comes from a replay: events it emits say so. */
  replayId: string | null;
  /** The indexes of its actions that succeeded in an earlier attempt, as the claim found them: they are skipped. */
  actionsDone: ReadonlySet<number>;
  event: EventEnvelope;
}

/** Runs queued: the 0011 migration's trigger notifies this channel when a statement queues runs. */
export const RUNS_QUEUED_CHANNEL = 'walflow_runs_queued';

/** Runs of workflows with an action of these types count against `maxCallingOut`. */
export interface CallingOutLimit {
  actionTypes: readonly string[];
  maxCallingOut: number;
}

/**
 * Claims up to `limit` due runs for one worker (walflow.claim_runs): FOR UPDATE SKIP LOCKED lets any number of
 * workers, in any number of processes, take disjoint runs, in commit order per aggregate and within each
 * workflow's concurrency limit. The lease lets another worker take the run over if this one dies.
 */
export async function claimRuns(
  db: Kysely<WalflowDatabase>,
  workerId: string,
  limit: number,
  leaseMs: number,
  callingOut: CallingOutLimit = { actionTypes: [], maxCallingOut: limit },
): Promise<ClaimedRun[]> {
  const rows = await callClaimRuns(db, workerId, limit, leaseMs, callingOut, null);
  return rows.map(toClaimedRun);
}

/** A claim made inside the transaction that executes it (claimRunsToHold). */
export interface HeldClaim {
  /** Locked by the transaction, still `queued` and unleased: it executes them and finishes them, or rolls back. */
  held: ClaimedRun[];
  /** Leased as claimRuns leases (concurrency-limited, calling out): the lease commits with the transaction. */
  leased: ClaimedRun[];
  /** `walflow.workflow_revision` as the claim's statement read it; null when it claimed nothing. */
  workflowRevision: string | null;
}

/**
 * claimRuns inside the caller's READ COMMITTED transaction, holding the runs it can execute there (no
 * concurrency limit, no action that calls out) by their row locks alone: the transaction that claims them
 * finishes them in one write and one commit, and a crash or a rollback leaves them queued, free at once.
 * When it claims anything, the same statement limits the transaction's later statements (the held runs'
 * actions) to `statementTimeoutMs`, and its time idle to `leaseMs` (limitRunTransaction), a round trip fewer
 * than a statement of its own.
 */
export async function claimRunsToHold(
  trx: Transaction<WalflowDatabase>,
  workerId: string,
  limit: number,
  leaseMs: number,
  callingOut: CallingOutLimit,
  statementTimeoutMs: number,
): Promise<HeldClaim> {
  const rows = await callClaimRuns(trx, workerId, limit, leaseMs, callingOut, { statementTimeoutMs });
  const claim: HeldClaim = { held: [], leased: [], workflowRevision: rows[0]?.workflow_revision ?? null };
  for (const row of rows) (row.status === 'queued' ? claim.held : claim.leased).push(toClaimedRun(row));
  return claim;
}

type ClaimRow = Omit<EventRow, 'id'> & {
  id: string;
  status: string;
  workflow_id: string;
  workflow_version: number;
  attempts: number;
  max_attempts: number;
  replay_id: string | null;
  event_id: string;
  actions_done: number[];
  workflow_revision: string;
};

/**
 * The limits of a transaction that executes runs (limitRunTransaction), as select-list items: its statements to
 * `statementTimeoutMs`, its time idle to a lease, or to that limit when it is longer (a lease may be set short, and
 * one worker's rendering holds up the others' transactions for a moment). Each is a subquery, evaluated once, for
 * the first row: in a claim that takes nothing, not at all.
 */
export function runTransactionLimits(statementTimeoutMs: number, leaseMs: number): RawBuilder<unknown> {
  return sql`(SELECT set_config('statement_timeout', ${String(statementTimeoutMs)}, true)) AS statement_timeout,
             (SELECT set_config('idle_in_transaction_session_timeout', ${String(Math.max(leaseMs, statementTimeoutMs))}, true)) AS idle_timeout`;
}

async function callClaimRuns(
  db: Kysely<WalflowDatabase>,
  workerId: string,
  limit: number,
  leaseMs: number,
  callingOut: CallingOutLimit,
  /** Claiming to hold (claimRunsToHold): the runs the caller's transaction executes, and their statements' limit. */
  holding: { statementTimeoutMs: number } | null,
): Promise<ClaimRow[]> {
  const limits = holding === null ? sql`` : sql`, ${runTransactionLimits(holding.statementTimeoutMs, leaseMs)}`;
  const { rows } = await sql<ClaimRow>`
    SELECT (c.run).id, (c.run).status, (c.run).workflow_id, (c.run).workflow_version, (c.run).attempts, (c.run).max_attempts, (c.run).replay_id,
           (c.event).id AS event_id, (c.event).event_type, (c.event).tenant_id, (c.event).aggregate_type, (c.event).aggregate_id,
           (c.event).payload, (c.event).metadata, to_json((c.event).committed_at) #>> '{}' AS committed_at,
           (c.event).commit_lsn::text AS commit_lsn, (c.event).tx_position, (c.event).xid::text AS xid, c.actions_done,
           (SELECT revision FROM walflow.workflow_revision)::text AS workflow_revision ${limits}
      FROM walflow.claim_runs(${workerId}, ${limit}, ${leaseMs}, ${[...callingOut.actionTypes]}::text[], ${callingOut.maxCallingOut}, ${holding !== null}) c`.execute(db);
  return rows;
}

function toClaimedRun(row: ClaimRow): ClaimedRun {
  return {
    id: row.id,
    workflowId: row.workflow_id,
    workflowVersion: row.workflow_version,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    replayId: row.replay_id,
    actionsDone: new Set(row.actions_done),
    event: toEventEnvelope({ ...row, id: row.event_id }),
  };
}

/**
 * Leases runs this worker held in a transaction that did not finish them (rolled back, or whose workflow now
 * calls out), as the claim would have: one attempt more. Runs finished meanwhile, taken by another worker, or
 * attempted by one since (their attempts differ from the claim's: a retry due later stays queued for then) are
 * left out. Returns the runs leased, with their attempts counted and the actions that succeeded read again once
 * the lease is taken: another worker may have leased such a run, performed some of its actions and handed it
 * back at shutdown (its attempt uncounted) before this lease. Safe to call again when an earlier call's answer was
 * lost: the runs it leased are returned again, their attempt counted once.
 */
export async function leaseHeldRuns(db: Kysely<WalflowDatabase>, runs: readonly ClaimedRun[], workerId: string, leaseMs: number): Promise<ClaimedRun[]> {
  if (runs.length === 0) return [];
  const { rows } = await sql<{ id: string; attempts: number }>`
    UPDATE walflow.workflow_runs r
       SET status = 'running', attempts = CASE WHEN r.status = 'queued' THEN r.attempts + 1 ELSE r.attempts END, locked_by = ${workerId},
           locked_until = now() + ${leaseMs} * interval '1 millisecond', started_at = coalesce(r.started_at, now())
      FROM (SELECT w.id FROM walflow.workflow_runs w
              JOIN unnest(${runs.map((run) => run.id)}::uuid[], ${runs.map((run) => run.attempts)}::integer[]) AS claimed (id, attempts)
                ON w.id = claimed.id
             WHERE w.status = 'queued' AND w.attempts = claimed.attempts
                -- Leased by this very call before, its answer lost: taken again, not counted again.
                OR w.status = 'running' AND w.locked_by = ${workerId} AND w.attempts = claimed.attempts + 1
               FOR UPDATE OF w SKIP LOCKED) free
     WHERE r.id = free.id
    RETURNING r.id, r.attempts`.execute(db);
  if (rows.length === 0) return [];
  // A statement of its own, so that it sees outcomes committed while the lease was being taken.
  const done = await sql<{ id: string; actions_done: number[] }>`
    SELECT id, walflow.actions_done(id) AS actions_done FROM unnest(${rows.map((row) => row.id)}::uuid[]) AS id`.execute(db);
  const actionsDone = new Map(done.rows.map((row) => [row.id, new Set(row.actions_done)]));
  const attempts = new Map(rows.map((row) => [row.id, row.attempts]));
  return runs
    .filter((run) => attempts.has(run.id))
    .map((run) => ({ ...run, attempts: attempts.get(run.id)!, actionsDone: actionsDone.get(run.id) ?? new Set<number>() }));
}

export interface ActionOutcome {
  runId: string;
  actionIndex: number;
  actionType: string;
  status: 'succeeded' | 'failed';
  result?: Record<string, unknown>;
  error?: string;
}

/** Records action outcomes under (run, action index); an outcome recorded again replaces the earlier one. */
export async function recordOutcomes(trx: Transaction<WalflowDatabase>, outcomes: readonly ActionOutcome[]): Promise<void> {
  if (outcomes.length === 0) return;
  await insertOutcomes(outcomes).execute(trx);
}

/**
 * Records an action failed, unless it succeeded after all: its success committed though the worker took the
 * commit for failed (its answer lost). Returns whether the failure was recorded.
 */
export async function recordFailedAction(trx: Transaction<WalflowDatabase>, outcome: Omit<ActionOutcome, 'status'>): Promise<boolean> {
  const { rows } = await sql`${insertOutcomes([{ ...outcome, status: 'failed' }])} RETURNING o.action_index`.execute(trx);
  return rows.length > 0;
}

/** recordOutcomes' statement, for a WITH of another statement to hold. */
function insertOutcomes(outcomes: readonly ActionOutcome[]): RawBuilder<unknown> {
  const rows = outcomes.map((outcome) => ({
    run_id: outcome.runId,
    action_index: outcome.actionIndex,
    action_type: outcome.actionType,
    status: outcome.status,
    result: outcome.result ?? {},
    error: outcome.error === undefined ? null : storableText(outcome.error, ERROR_CHARS),
  }));
  return sql`
    INSERT INTO walflow.action_outcomes AS o (run_id, action_index, action_type, status, result, error)
    SELECT run_id, action_index, action_type, status, result, error
      FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
        AS r (run_id uuid, action_index integer, action_type text, status text, result jsonb, error text)
    ON CONFLICT (run_id, action_index) DO UPDATE
       SET status = excluded.status, result = excluded.result, error = excluded.error, attempts = o.attempts + 1, finished_at = now()
     -- A success stays one: its commit may have reached the database after all, when the worker took the failure
     -- to record it for an error (a connection lost before the commit's answer); a retry then skips the action.
     WHERE o.status <> 'succeeded' OR excluded.status = 'succeeded'`;
}

/**
 * Marks runs succeeded, with the outcomes of the actions they performed last, and starts their workflows' count
 * of dead runs in a row again: one statement. Call after holdsLease (or extendLeases) in the same transaction, or
 * in the transaction that holds them (claimRunsToHold): a held run's attempt is counted here, where a leased
 * one's was at its claim.
 */
export async function completeRuns(trx: Transaction<WalflowDatabase>, runIds: readonly string[], outcomes: readonly ActionOutcome[] = []): Promise<void> {
  if (runIds.length === 0) return;
  await sql`
    WITH ${outcomes.length > 0 ? sql`recorded AS (${insertOutcomes(outcomes)}),` : sql``}
    completed AS (
      UPDATE walflow.workflow_runs
         SET status = 'succeeded', attempts = CASE WHEN status = 'queued' THEN attempts + 1 ELSE attempts END,
             started_at = coalesce(started_at, now()), finished_at = now(), locked_by = NULL, locked_until = NULL, last_error = NULL
       WHERE id = ${anyUuid(runIds)}
      RETURNING workflow_id
    )
    UPDATE walflow.workflows SET consecutive_failures = 0
     WHERE id IN (SELECT workflow_id FROM completed) AND consecutive_failures <> 0`.execute(trx);
}

/** Records a failed attempt: queued again after `retryInMs`, or dead when null. Call after holdsLease. */
export async function failRun(trx: Transaction<WalflowDatabase>, runId: string, error: string, retryInMs: number | null): Promise<void> {
  await trx
    .updateTable('walflow.workflow_runs')
    .set({
      status: retryInMs === null ? 'dead' : 'queued',
      next_attempt_at: retryInMs === null ? sql`now()` : sql`now() + ${retryInMs} * interval '1 millisecond'`,
      finished_at: retryInMs === null ? sql`now()` : null,
      last_error: storableText(error, ERROR_CHARS),
      locked_by: null,
      locked_until: null,
    })
    .where('id', '=', runId)
    .execute();
}

/** A run whose workflow was deleted or disabled is cancelled, never executed. */
export async function cancelRun(trx: Transaction<WalflowDatabase>, runId: string, reason: string): Promise<void> {
  await trx
    .updateTable('walflow.workflow_runs')
    .set({ status: 'cancelled', finished_at: sql`now()`, last_error: reason, locked_by: null, locked_until: null })
    .where('id', '=', runId)
    .execute();
}
