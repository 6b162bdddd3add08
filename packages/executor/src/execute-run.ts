import { linkSignals, RUN_EVENT_TYPES, untilAborted, WalflowError, type WalflowDatabase } from '@walflow/core';
import { emitCaused } from '@walflow/outbox';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { ActionRuntime } from './actions/external-action.js';
import { planAction } from './actions/plan-action.js';
import { policyRefusal, type WorkflowPolicy } from './compile-workflow.js';
import { keepLease } from './lease-keeper.js';
import { afterFailure, type RetryPolicyOptions } from './retry-policy.js';
import { followUp, recordDeath } from './run-death.js';
import { DEFAULT_LEASE_MS, holdsLease } from './run-leases.js';
import { holdRunsOfPausedWorkflows } from './run-hand-back.js';
import { cancelRun, completeRuns, failRun, recordFailedAction, recordOutcomes, runTransactionLimits, type ClaimedRun } from './run-queue.js';
import type { WorkflowAction } from './workflow-definition.js';
import { getWorkflowById, isUnreadable, type ReadWorkflow, type StoredWorkflow } from './workflow-store.js';

/** Told how actions and attempts went, for metrics. */
export interface ExecutionObserver {
  actionFinished(type: string, seconds: number, succeeded: boolean): void;
  attemptFinished(result: RunResult): void;
}

export interface RunExecutorOptions {
  db: Kysely<WalflowDatabase>;
  logger: Logger;
  runtime: ActionRuntime;
  /** The lease a claim gives a run that calls out, extended while the run executes. @default 60000 */
  leaseMs?: number | undefined;
  retry?: RetryPolicyOptions | undefined;
  observer?: ExecutionObserver | undefined;
  /**
   * Aborted when the worker pool's shutdown grace is over: an action in flight stops, its attempt records nothing
   * (as when the lease is lost), and the run is handed back rather than left calling out beside its repeat.
   */
  shutdown?: AbortSignal | undefined;
}

/** `held`: its workflow was paused after the claim, and the run waits for the resume, its attempt not counted. */
export type RunResult = 'succeeded' | 'retrying' | 'dead' | 'cancelled' | 'held' | 'lease_lost';

class LeaseLost extends Error {}

/**
 * Executes one claimed run: its actions in order, each outcome recorded under (run, action index) so a retry
 * skips what already succeeded. Database actions run in the transaction that records their outcome (exactly
 * once); mail and HTTP run outside it (at least once, with a stable idempotency key).
 */
export async function executeRun(run: ClaimedRun, workerId: string, options: RunExecutorOptions): Promise<RunResult> {
  // The workflow is read before the lease is first extended: an apply that changed its actions cancels the runs
  // executing them in the same commit, so a definition read before an extension that succeeds is the one the
  // run's actionsDone were numbered by. Read after, it could be a newer one, whose action at a done index differs.
  const workflow = await getWorkflowById(options.db, run.workflowId);
  const lease = await keepLease(options.db, run.id, workerId, options.leaseMs ?? DEFAULT_LEASE_MS, options.logger);
  let result: RunResult = 'lease_lost';
  if (lease !== null) {
    const stop = linkSignals([lease.lost, options.shutdown]);
    try {
      result = await attempt(run, workflow, workerId, options, stop.signal);
    } finally {
      stop.dispose();
      lease.stop();
    }
  }
  options.observer?.attemptFinished(result);
  return result;
}

async function attempt(run: ClaimedRun, stored: ReadWorkflow | undefined, workerId: string, options: RunExecutorOptions, leaseLost: AbortSignal): Promise<RunResult> {
  const { db, logger } = options;
  const fenced = async <T>(work: (trx: Transaction<WalflowDatabase>) => Promise<T>): Promise<T> =>
    db.transaction().execute(async (trx) => {
      await limitRunTransaction(trx, options);
      if (!(await holdsLease(trx, run.id, workerId))) throw new LeaseLost();
      return work(trx);
    });

  /**
   * Records the attempt failed, retried after its backoff or dead, in one fenced transaction with what else the
   * failure records (`alongside`, told whether the run dies).
   */
  const failAttempt = async (error: unknown, alongside: (trx: Transaction<WalflowDatabase>, dies: boolean) => Promise<void>): Promise<RunResult> => {
    const message = error instanceof Error ? error.message : String(error);
    const allowance = stored === undefined || isUnreadable(stored) ? undefined : stored.definition.retry.maxAttempts;
    const verdict = afterFailure(run.attempts, run.maxAttempts, options.retry, allowance);
    logger.warn({ err: error, runId: run.id, workflowId: run.workflowId, attempts: run.attempts, verdict: verdict.kind }, 'run attempt failed');
    try {
      await fenced(async (trx) => {
        await failRun(trx, run.id, message, verdict.kind === 'retry' ? verdict.delayMs : null);
        await alongside(trx, verdict.kind === 'dead');
      });
    } catch (recordError) {
      if (recordError instanceof LeaseLost) return 'lease_lost';
      throw recordError;
    }
    return verdict.kind === 'dead' ? 'dead' : 'retrying';
  };

  const runnable = toRun(stored, options.runtime);
  if ('cancelled' in runnable) {
    return fenced((trx) => cancelRun(trx, run.id, runnable.cancelled).then(() => 'cancelled' as const)).catch(leaseLostOr('cancelled'));
  }
  // Without a definition there is no action to name and no auto-pause to count: the run only fails, or dies.
  if ('fails' in runnable) return failAttempt(runnable.fails, async () => {});
  const { workflow } = runnable;
  // Paused since the claim, by an operator or by walflow after failures of runs claimed with this one: the run
  // would only fail again on what paused it, and the pause promises that its runs wait.
  if (workflow.status === 'paused') {
    const heldBack = await fenced((trx) => holdRunsOfPausedWorkflows(trx, [run.id])).catch(leaseLostOr(null));
    if (heldBack === null) return 'lease_lost';
    // Resumed since it was read: the run goes on.
    if (heldBack.size === 1) return 'held';
  }

  let failing: { index: number; action: WorkflowAction } | undefined;
  try {
    for (const [index, action] of workflow.definition.actions.entries()) {
      if (run.actionsDone.has(index)) continue;
      failing = { index, action };
      const started = performance.now();
      try {
        await performAction(action, index, run, workflow, options, fenced, leaseLost);
        options.observer?.actionFinished(action.type, (performance.now() - started) / 1000, true);
      } catch (error) {
        options.observer?.actionFinished(action.type, (performance.now() - started) / 1000, false);
        throw error;
      }
    }
    failing = undefined;
    await fenced((trx) => completeRuns(trx, [run.id]));
    return 'succeeded';
  } catch (error) {
    // Past the shutdown grace a failure is the stop's doing (a call cut short, a statement that waited for a lock
    // cancelled at its limit): nothing is recorded, and the worker hands the run back, its attempt not counted.
    if (error instanceof LeaseLost || options.shutdown?.aborted) return 'lease_lost';
    const message = error instanceof Error ? error.message : String(error);
    return failAttempt(error, async (trx, dies) => {
      // An action whose success committed after all did not fail: a run that dies now does not die on it.
      const failed = failing && (await recordFailedAction(trx, { runId: run.id, actionIndex: failing.index, actionType: failing.action.type, error: message })) ? failing : undefined;
      if (dies) await recordDeath(trx, { run, workflow, failing: failed, error: message }, logger);
    });
  }
}

async function performAction(
  action: WorkflowAction,
  index: number,
  run: ClaimedRun,
  workflow: StoredWorkflow,
  options: RunExecutorOptions,
  fenced: <T>(work: (trx: Transaction<WalflowDatabase>) => Promise<T>) => Promise<T>,
  leaseLost: AbortSignal,
): Promise<void> {
  const plan = planAction(action);
  const base = actionContext(run, workflow, index);
  if (plan.kind === 'transactional') {
    await fenced(async (trx) => {
      const result = await plan.perform({ ...base, trx });
      await recordOutcomes(trx, [{ runId: run.id, actionIndex: index, actionType: action.type, status: 'succeeded', result }]);
    });
    return;
  }
  // Lost before it starts, the action is not performed at all: an action handed an aborted signal would fail, and
  // that failure be counted as an attempt.
  if (leaseLost.aborted) throw new LeaseLost();
  const timeoutMs = actionTimeoutMs(options.runtime);
  const limit = linkSignals([leaseLost], timeoutMs);
  let result: Record<string, unknown>;
  try {
    result = await untilAborted(plan.perform({ ...base, idempotencyKey: `${run.id}:${index}`, signal: limit.signal, runtime: options.runtime }), limit.signal, () =>
      leaseLost.aborted ? new LeaseLost() : new WalflowError('action_failed', `${action.type} timed out after ${timeoutMs} ms`),
    );
  } finally {
    limit.dispose();
  }
  await fenced(async (trx) => {
    await recordOutcomes(trx, [{ runId: run.id, actionIndex: index, actionType: action.type, status: 'succeeded', result }]);
    if (action.type === 'send_email') {
      await emitCaused(trx, followUp(run, workflow, RUN_EVENT_TYPES.emailSent, { ...result, actionIndex: index }));
    }
  });
}

/**
 * The workflow a run executes, why the run is cancelled instead, or why its attempt fails: a workflow that cannot
 * be read (retried, so that applying it again lets the run go on, or `walflow dead-runs retry` once it is dead).
 */
export function toRun(workflow: ReadWorkflow | undefined, policy: WorkflowPolicy): { workflow: StoredWorkflow } | { cancelled: string } | { fails: string } {
  if (!workflow) return { cancelled: 'workflow was deleted' };
  if (workflow.status === 'disabled') return { cancelled: 'workflow is disabled' };
  if (isUnreadable(workflow)) return { fails: `the workflow's stored definition cannot be read (apply it again): ${workflow.unreadable}` };
  // Fails rather than cancels: once the operator allows the target again, or applies a changed workflow, the run goes on.
  const refusal = policyRefusal(workflow.definition, policy);
  if (refusal !== undefined) return { fails: `${refusal} (the policy of the process executing it)` };
  return { workflow };
}

/** What an action of a run knows, besides the transaction or the outside world it acts on. */
export function actionContext(run: ClaimedRun, workflow: StoredWorkflow, actionIndex: number) {
  return { event: run.event, workflow, runId: run.id, actionIndex, replayId: run.replayId };
}

export function actionTimeoutMs(runtime: ActionRuntime): number {
  return runtime.actionTimeoutMs ?? 10_000;
}

/**
 * Limits a transaction that executes runs: its statements to the time mail and HTTP get, and its time idle to a
 * lease (runTransactionLimits), so that runs whose worker hangs or loses its connection mid-transaction are free
 * again within a lease (the server ends the session), as a leased run is, not when TCP gives up hours later.
 */
export async function limitRunTransaction(trx: Transaction<WalflowDatabase>, options: RunExecutorOptions): Promise<void> {
  await sql`SELECT ${runTransactionLimits(actionTimeoutMs(options.runtime), options.leaseMs ?? DEFAULT_LEASE_MS)}`.execute(trx);
}

function leaseLostOr<T>(value: T): (error: unknown) => T {
  return (error) => {
    if (error instanceof LeaseLost) return value;
    throw error;
  };
}
