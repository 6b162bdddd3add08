import { WalflowError, type WalflowDatabase } from '@walflow/core';
import { sql, type Transaction } from 'kysely';
import { performTogether } from './actions/perform-together.js';
import { planAction } from './actions/plan-action.js';
import type { WorkflowPolicy } from './compile-workflow.js';
import { actionContext, actionTimeoutMs, executeRun, limitRunTransaction, toRun, type RunExecutorOptions, type RunResult } from './execute-run.js';
import { DEFAULT_LEASE_MS, extendLeases } from './run-leases.js';
import { holdRunsOfPausedWorkflows, releaseLeasedRuns } from './run-hand-back.js';
import { cancelRun, claimRunsToHold, completeRuns, leaseHeldRuns, type ActionOutcome, type CallingOutLimit, type ClaimedRun } from './run-queue.js';
import { keepWaitingLeases, type WaitingLeases } from './waiting-leases.js';
import { whileUnreachable } from './while-unreachable.js';
import type { WorkflowAction } from './workflow-definition.js';
import type { WorkflowCache } from './workflow-cache.js';
import type { ReadWorkflow, StoredWorkflow } from './workflow-store.js';

/**
 * True when every action of the workflow is a database write (notifications, events, field updates), or the
 * run is only to be cancelled: such runs can be executed together in one transaction.
 */
export function runsInOneTransaction(workflow: ReadWorkflow | undefined, policy: WorkflowPolicy): boolean {
  const runnable = toRun(workflow, policy);
  if ('fails' in runnable) return false;
  return 'cancelled' in runnable || runnable.workflow.definition.actions.every((action) => planAction(action).kind === 'transactional');
}

interface ActionTiming {
  type: string;
  seconds: number;
}

/**
 * Executes claimed runs whose actions are all transactional in ONE transaction fenced by their leases: the
 * actions' writes, their outcomes and the runs' completion commit together, so a batch costs one commit instead
 * of two per run. The guarantees are a single run's: each action's effect commits exactly once with its
 * outcome, actions that succeeded in an earlier attempt are skipped, a run whose lease was lost is left alone.
 * Any failure rolls the batch back and each run is then executed on its own (executeRun), which
 * retries or buries the failing run alone: one failing run costs the others a second try, never their outcome.
 */
export async function executeRunBatch(
  runs: readonly ClaimedRun[],
  workflows: ReadonlyMap<string, ReadWorkflow>,
  workerId: string,
  options: RunExecutorOptions,
): Promise<Map<string, RunResult>> {
  const timings: ActionTiming[] = [];
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  // Null when the batch failed. Its own failure is kept: a session that died fails the rollbacks too, whose errors
  // would hide it.
  let results: Map<string, RunResult> | null;
  let failure: unknown;
  try {
    results = await options.db
      .transaction()
      .setIsolationLevel('read committed')
      .execute(async (trx) => {
        await limitRunTransaction(trx, options);
        // Locks the runs this worker still holds by renewing their leases: an update, as a row lock taken here and
        // the row then updated under the savepoint would cost a MultiXact a batch.
        const held = await extendLeases(trx, runs.map((run) => run.id), workerId, leaseMs);
        // The leases are not extended while the batch runs (the sweep passes its locked rows over), and it may outlast
        // them. Should it fail before its commit, its writes go back to here and the leases are renewed before its
        // locks are let go: rolled back whole, they would be free to a sweep until the runs' turns renewed them.
        await sql`SAVEPOINT run_batch`.execute(trx);
        try {
          // Paused since the claim: they wait for the resume, as a run executed on its own does.
          const heldBack = await holdRunsOfPausedWorkflows(trx, [...held]);
          const executed = await executeTogether(trx, runs.filter((run) => held.has(run.id) && !heldBack.has(run.id)), workflows, options, timings);
          for (const run of runs) if (!held.has(run.id)) executed.set(run.id, 'lease_lost');
          for (const id of heldBack) executed.set(id, 'held');
          // Deferred constraints of the tables written are checked here, where a failure still rolls back to the
          // savepoint.
          await sql`SET CONSTRAINTS ALL IMMEDIATE`.execute(trx);
          return executed;
        } catch (error) {
          failure = error;
          await sql`ROLLBACK TO SAVEPOINT run_batch`.execute(trx);
          await extendLeases(trx, [...held], workerId, leaseMs);
          return null;
        }
      });
  } catch (error) {
    failure ??= error;
    results = null;
  }
  if (results === null) {
    options.logger.debug({ err: failure, runs: runs.length }, 'batch of runs rolled back; executing them one by one');
    return executeInTurn(runs, workerId, options);
  }
  observe(results, timings, options);
  return results;
}

export interface ClaimBatch {
  workerId: string;
  limit: number;
  leaseMs: number;
  callingOut: CallingOutLimit;
  /** The worker pool's: what the held runs' workflows are. */
  workflows: WorkflowCache;
  /** Called once the claim is made, before its runs execute, with the number of runs it took. */
  onClaimed(runs: number): void;
}

/**
 * Claims a batch in the transaction that executes it (claimRunsToHold): the runs it holds execute there as
 * executeRunBatch executes its runs, fenced by their row locks instead of leases, and go from queued to
 * finished in one write and one commit. Should the transaction fail, those runs are leased afresh, one attempt
 * counted, and executed one by one. Returns how many runs the claim took, and the runs it leased (concurrency-
 * limited, calling out, or whose workflow calls out by now): the caller executes those after the commit.
 */
export async function claimAndExecuteHeld(batch: ClaimBatch, options: RunExecutorOptions): Promise<{ claimed: number; leased: ClaimedRun[] }> {
  const timings: ActionTiming[] = [];
  let held: ClaimedRun[] = [];
  let leasedInClaim: ClaimedRun[] = [];
  let claim: { claimed: number; leased: ClaimedRun[]; results: Map<string, RunResult> };
  const claimedAt = performance.now();
  try {
    claim = await options.db
      .transaction()
      .setIsolationLevel('read committed')
      .execute(async (trx) => {
        // Past the pool's shutdown grace no leased run is started: those the claim leased go back with its commit,
        // their attempt uncounted, rather than wait out their leases once the pool's connections are closed.
        const toStart = async (leasedNow: ClaimedRun[]): Promise<ClaimedRun[]> => {
          if (!options.shutdown?.aborted || leasedNow.length === 0) return leasedNow;
          await releaseLeasedRuns(trx, leasedNow.map((run) => run.id), batch.workerId);
          return (leasedInClaim = []);
        };
        const timeoutMs = actionTimeoutMs(options.runtime);
        const { held: holding, leased, workflowRevision } = await claimRunsToHold(trx, batch.workerId, batch.limit, batch.leaseMs, batch.callingOut, timeoutMs);
        held = holding;
        leasedInClaim = leased;
        const claimed = holding.length + leased.length;
        if (claimed > 0) batch.onClaimed(claimed);
        if (holding.length === 0) return { claimed, leased: await toStart(leased), results: new Map() };
        const workflows = await batch.workflows.get(trx, [...new Set(holding.map((run) => run.workflowId))], workflowRevision!);
        // The workflow may have changed since the claim read it: a run that now calls out is leased instead.
        const together: ClaimedRun[] = [];
        const callingOutNow: ClaimedRun[] = [];
        for (const run of holding) (runsInOneTransaction(workflows.get(run.workflowId), options.runtime) ? together : callingOutNow).push(run);
        const results = await executeTogether(trx, together, workflows, options, timings);
        const leasedToo = [...leased, ...(await leaseHeldRuns(trx, callingOutNow, batch.workerId, batch.leaseMs))];
        leasedInClaim = leasedToo;
        // Their leases run from the transaction's start: held runs that took long have eaten into them.
        if (leasedToo.length > 0 && performance.now() - claimedAt > batch.leaseMs / 3) {
          await extendLeases(trx, leasedToo.map((run) => run.id), batch.workerId, batch.leaseMs);
        }
        return { claimed, leased: await toStart(leasedToo), results };
      });
  } catch (error) {
    // The commit may have taken effect with its answer lost: the runs it leased are this worker's then, and would
    // otherwise wait for their leases to run out, counted, and die so on a last attempt without having run.
    const stillLeased = await leasedAfterFailure(leasedInClaim, batch, options);
    if (held.length === 0 && stillLeased.length === 0) throw error;
    options.logger.debug({ err: error, runs: held.length }, 'batch of held runs rolled back; leasing them and executing them one by one');
    // A held run the claim went on to lease (its workflow now calls out) is among stillLeased already, and leasing
    // it again (safe to repeat) would return it a second time.
    const alreadyLeased = new Set(stillLeased.map((run) => run.id));
    const leaseAgain = held.filter((run) => !alreadyLeased.has(run.id));
    const leasedAgain = leaseAgain.length === 0 ? [] : await leaseAfterFailure(leaseAgain, batch, options);
    await executeInTurn([...stillLeased, ...leasedAgain], batch.workerId, options);
    return { claimed: held.length + stillLeased.length, leased: [] };
  }
  observe(claim.results, timings, options);
  return { claimed: claim.claimed, leased: claim.leased };
}

/**
 * Leases the runs of a held transaction that failed, counting their attempt, and tries again while the database
 * does not answer, for as long as a lease lasts. The transaction may have failed because one of these runs
 * crashed its PostgreSQL backend (the server then restarts every session): held again uncounted, such a run
 * would crash it for ever, where a counted attempt makes it dead in the end.
 */
async function leaseAfterFailure(runs: readonly ClaimedRun[], batch: ClaimBatch, options: RunExecutorOptions): Promise<ClaimedRun[]> {
  return whileUnreachable(() => leaseHeldRuns(options.db, runs, batch.workerId, batch.leaseMs), batch.leaseMs, options.logger, 'could not lease the runs of a failed batch; trying again');
}

/** The runs a failed claim leased that this worker holds all the same: its commit took effect, the answer lost. */
async function leasedAfterFailure(leased: readonly ClaimedRun[], batch: ClaimBatch, options: RunExecutorOptions): Promise<ClaimedRun[]> {
  if (leased.length === 0) return [];
  const ids = leased.map((run) => run.id);
  const ours = await whileUnreachable(() => extendLeases(options.db, ids, batch.workerId, batch.leaseMs), batch.leaseMs, options.logger, 'could not check the leases of a failed claim; trying again');
  return leased.filter((run) => ours.has(run.id));
}

/**
 * Executes leased runs one after another, keeping the leases of those waiting their turn (with `waiting`, the
 * caller's keeper, or one of its own). A run whose attempt failed without a record (its session died: the
 * server may be restarting, after this very run crashed it) is left to its lease, which returns it to the
 * queue; the runs after it wait until the database answers again, for up to a lease, and then get their turn.
 */
export async function executeInTurn(
  runs: readonly ClaimedRun[],
  workerId: string,
  options: RunExecutorOptions,
  waiting?: WaitingLeases,
): Promise<Map<string, RunResult>> {
  const results = new Map<string, RunResult>();
  if (runs.length === 0) return results;
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const keeper = waiting ?? (await keepWaitingLeases(options.db, runs.map((run) => run.id), workerId, leaseMs, options.logger));
  try {
    for (const [position, run] of runs.entries()) {
      keeper.begin(run.id);
      try {
        const result = await executeRun(run, workerId, options);
        results.set(run.id, result);
        options.logger.debug({ runId: run.id, workflowId: run.workflowId, eventId: run.event.id, result }, 'run attempt finished');
      } catch (error) {
        options.logger.error({ err: error, runId: run.id }, 'run attempt failed without a record: its lease will return it to the queue');
        if (position < runs.length - 1) {
          await whileUnreachable(() => sql`SELECT 1`.execute(options.db), leaseMs, options.logger, 'waiting for the database before the next run').catch(() => undefined);
        }
      }
    }
  } finally {
    if (waiting === undefined) keeper.stop();
  }
  return results;
}

function observe(results: ReadonlyMap<string, RunResult>, timings: readonly ActionTiming[], options: RunExecutorOptions): void {
  for (const timing of timings) options.observer?.actionFinished(timing.type, timing.seconds, true);
  for (const result of results.values()) options.observer?.attemptFinished(result);
}

/**
 * Executes the runs in `trx`, which holds them (by their row locks, or fenced by their leases) and has limited
 * its statements to the action timeout.
 */
async function executeTogether(
  trx: Transaction<WalflowDatabase>,
  runs: readonly ClaimedRun[],
  workflows: ReadonlyMap<string, ReadWorkflow>,
  options: RunExecutorOptions,
  timings: ActionTiming[],
): Promise<Map<string, RunResult>> {
  const results = new Map<string, RunResult>();
  if (runs.length === 0) return results;
  const executing: { run: ClaimedRun; workflow: StoredWorkflow; pending: [number, WorkflowAction][] }[] = [];
  for (const run of runs) {
    const runnable = toRun(workflows.get(run.workflowId), options.runtime);
    if ('fails' in runnable) {
      // Not executed together (runsInOneTransaction); should one come here, the batch goes on run by run.
      throw new WalflowError('action_failed', runnable.fails);
    } else if ('cancelled' in runnable) {
      await cancelRun(trx, run.id, runnable.cancelled);
      results.set(run.id, 'cancelled');
    } else {
      const pending = [...runnable.workflow.definition.actions.entries()].filter(([index]) => !run.actionsDone.has(index));
      executing.push({ run, workflow: runnable.workflow, pending });
    }
  }
  // Step by step: the n-th pending action of every run together, so each run still acts in order.
  const outcomes: ActionOutcome[] = [];
  for (let step = 0; ; step++) {
    const wave = executing.filter(({ pending }) => pending.length > step);
    if (wave.length === 0) break;
    const calls = wave.map(({ run, workflow, pending }) => {
      const [index, action] = pending[step]!;
      return { action, context: actionContext(run, workflow, index) };
    });
    const performed = await performTogether(trx, calls);
    calls.forEach(({ action, context }, position) => {
      const { result, seconds } = performed[position]!;
      timings.push({ type: action.type, seconds });
      outcomes.push({ runId: context.runId, actionIndex: context.actionIndex, actionType: action.type, status: 'succeeded', result });
    });
  }
  const succeeded = executing.map(({ run }) => run);
  for (const run of succeeded) results.set(run.id, 'succeeded');
  await completeRuns(trx, succeeded.map((run) => run.id), outcomes);
  return results;
}
