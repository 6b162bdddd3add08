import { randomUUID } from 'node:crypto';
import type { WalflowDatabase } from '@walflow/core';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { ActionRuntime } from './actions/external-action.js';
import { CALLING_OUT_ACTION_TYPES } from './actions/plan-action.js';
import { actionTimeoutMs, type ExecutionObserver, type RunExecutorOptions } from './execute-run.js';
import { releaseExpiredLeases } from './expired-leases.js';
import type { RetryPolicyOptions } from './retry-policy.js';
import { claimAndExecuteHeld, executeInTurn, executeRunBatch, runsInOneTransaction } from './run-batch.js';
import { DEFAULT_LEASE_MS } from './run-leases.js';
import { releaseHeldRuns } from './run-hand-back.js';
import type { ClaimedRun } from './run-queue.js';
import { cancelRunsWithoutEvent, EVENT_GONE } from './runs-without-event.js';
import { releaseStrandedRuns } from './stranded-runs.js';
import { WorkflowCache } from './workflow-cache.js';
import { keepWaitingLeases } from './waiting-leases.js';
import { whileUnreachable } from './while-unreachable.js';
import { getWorkflowsById } from './workflow-store.js';

const DEFAULT_CLAIM_BATCH_SIZE = 200;
/** How long a stopping pool gives the actions it aborted to give up before it hands their runs back. */
const ABORTED_ACTIONS_SETTLE_MS = 1000;

export interface WorkerPoolOptions {
  db: Kysely<WalflowDatabase>;
  logger: Logger;
  /** Workers of this process, each executing one claimed batch at a time. @default 4 */
  concurrency?: number;
  /**
   * Runs one worker claims at once. Those whose actions are all database writes execute together in one
   * transaction; of the runs that call out (mail, HTTP) a claim takes one. @default 200
   */
  claimBatchSize?: number;
  /** How often an idle worker looks for due runs (retries, runs queued by other processes). @default 1000 */
  pollIntervalMs?: number;
  /**
   * How long a leased run (one that calls out, or of a concurrency-limited workflow) stays with its worker before
   * another may take it over; database-only runs are held by the transaction that claims them. @default 60000
   */
  leaseMs?: number;
  retry?: RetryPolicyOptions;
  /** Mail, webhook and secret settings for actions that reach outside PostgreSQL. */
  runtime?: ActionRuntime;
  observer?: ExecutionObserver;
}

/** Executes queued workflow runs: claim, run the actions, record success, or schedule a retry or death. */
export class WorkerPool {
  private readonly id = `worker-${randomUUID()}`;
  private loops: Promise<void>[] = [];
  private stopping = false;
  private waiting = new Set<() => void>();
  /**
   * Wake-ups that found no idle worker to wake, counted for ever. A worker whose claim found nothing claims again
   * if the count moved while it claimed: its claim may have read the queue before those runs were committed.
   */
  private wakesMissed = 0;
  private lastSweep = Number.NEGATIVE_INFINITY;
  /** One worker sweeps at a time: a slow sweep must not take the others from the queue too. */
  private sweeping = false;
  /** Runs this pool's claims took, for the log line at stop: which processes of a deployment did the work. */
  private runsClaimed = 0;
  private readonly workflows = new WorkflowCache();

  /** What every run execution needs, the same for every claim. */
  private readonly execution: RunExecutorOptions;
  /** Aborts the actions in flight once the shutdown grace is over. */
  private shutdown = new AbortController();

  constructor(private readonly options: WorkerPoolOptions) {
    this.execution = {
      db: options.db,
      logger: options.logger,
      runtime: options.runtime ?? { secrets: new Map(), webhookAllowHosts: [] },
      retry: options.retry,
      observer: options.observer,
      leaseMs: options.leaseMs,
      shutdown: this.shutdown.signal,
    };
  }

  start(): void {
    if (this.loops.length > 0) return;
    this.stopping = false;
    if (this.shutdown.signal.aborted) {
      this.shutdown = new AbortController();
      this.execution.shutdown = this.shutdown.signal;
    }
    const concurrency = this.options.concurrency ?? 4;
    this.loops = Array.from({ length: concurrency }, (_, slot) => this.loop(`${this.id}/${slot}`));
  }

  /**
   * Stops claiming and waits for the runs in hand, at most `graceMs`; runs still going then are handed back to
   * the queue, so other workers take them over at once instead of when their leases expire.
   */
  async stop(graceMs = 30_000): Promise<void> {
    this.stopping = true;
    this.wakeAll();
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), graceMs)));
    const loopsDone = Promise.all(this.loops).then(() => 'done' as const);
    const finished = await Promise.race([loopsDone, graceOver]);
    clearTimeout(timer);
    if (finished === 'timeout') {
      // The calls in flight stop first, recording nothing: handed back while still calling out, a run would be
      // taken over and called again beside a call that may still get through. A batch of database writes still
      // going hands back, as it commits, the runs its claim leased (claimAndExecuteHeld).
      this.shutdown.abort();
      await settledWithin(loopsDone, ABORTED_ACTIONS_SETTLE_MS);
      await this.releaseRunsInHand(graceMs);
      // That hand-back passes over a run whose outcome is being written (a database action waiting for a lock):
      // its loop hands it back once that transaction ends, which the statement limit bounds. Waited for, so that
      // it happens before the caller closes the pool; else the run waited out its lease, its attempt counted.
      await settledWithin(loopsDone, actionTimeoutMs(this.execution.runtime) + ABORTED_ACTIONS_SETTLE_MS);
    }
    this.loops = [];
    this.options.logger.info({ poolId: this.id, runsClaimed: this.runsClaimed }, 'worker pool stopped');
  }

  /**
   * Wakes idle workers: runs were just queued. One worker per claim batch of `runs` (one when the count is not
   * known): every worker woken for nothing would still walk the queue. A worker whose claim came back full, or
   * held a run that calls out, wakes the next one itself.
   */
  notify(runs?: number): void {
    const claimBatchSize = this.options.claimBatchSize ?? DEFAULT_CLAIM_BATCH_SIZE;
    let workers = runs === undefined ? 1 : Math.ceil(runs / claimBatchSize);
    for (const wake of this.waiting) {
      if (workers <= 0) break;
      wake();
      workers--;
    }
    if (workers > 0) this.wakesMissed++;
  }

  private wakeAll(): void {
    for (const wake of this.waiting) wake();
  }

  private async loop(workerId: string): Promise<void> {
    const { logger, claimBatchSize = DEFAULT_CLAIM_BATCH_SIZE, leaseMs = DEFAULT_LEASE_MS } = this.options;
    while (!this.stopping) {
      try {
        await this.sweep(leaseMs);
        if (this.stopping) break;
        const wakesMissedBefore = this.wakesMissed;
        const { claimed, leased } = await claimAndExecuteHeld(
          {
            workerId,
            limit: claimBatchSize,
            leaseMs,
            // One run that calls out per claim: mail and HTTP wait for each other, so they spread over the workers.
            callingOut: { actionTypes: CALLING_OUT_ACTION_TYPES, maxCallingOut: 1 },
            workflows: this.workflows,
            onClaimed: (runs) => {
              if (runs === claimBatchSize) this.notify();
            },
          },
          this.execution,
        );
        this.runsClaimed += claimed;
        if (claimed === 0) {
          if (this.wakesMissed === wakesMissedBefore) await this.idle();
          continue;
        }
        if (leased.length > 0) await this.execute(leased, workerId);
        // Past the grace, stop() hands back the runs in hand it can see; runs this loop leased and then left unrun
        // since (a batch that failed and was leased run by run, say) would wait out their leases with an attempt
        // counted. The loop hands them back, while the pool's connections are still open.
        if (this.shutdown.signal.aborted) {
          const released = await releaseHeldRuns(this.options.db, this.id);
          if (released > 0) logger.warn({ released, workerId }, 'runs leased after the shutdown grace handed back to the queue');
        }
      } catch (error) {
        logger.error({ err: error, workerId }, 'worker loop failed; retrying');
        await this.idle();
      }
    }
  }

  private async execute(runs: ClaimedRun[], workerId: string): Promise<void> {
    const workflowIds = [...new Set(runs.map((run) => run.workflowId))];
    // The runs are this worker's already, their attempt counted: a read that fails now would leave them to their
    // leases, to die unrun on a last attempt. It waits for the database instead, as long as a lease lasts.
    const leaseMs = this.execution.leaseMs ?? DEFAULT_LEASE_MS;
    const workflows = await whileUnreachable(() => getWorkflowsById(this.options.db, workflowIds), leaseMs, this.options.logger, 'could not read the workflows of leased runs; trying again');
    const oneTransaction = new Map(workflowIds.map((id) => [id, runsInOneTransaction(workflows.get(id), this.execution.runtime)]));
    const together = runs.filter((run) => oneTransaction.get(run.workflowId));
    const alone = runs.filter((run) => !oneTransaction.get(run.workflowId));
    // A claim takes one run that calls out: others may be waiting, and another worker takes the next one.
    if (alone.length > 0) this.notify();
    // The runs that call out wait for the batch: their leases are kept meanwhile, and then while they take turns.
    const waiting = await keepWaitingLeases(this.options.db, alone.map((run) => run.id), workerId, leaseMs, this.options.logger);
    try {
      if (together.length > 0) await executeRunBatch(together, workflows, workerId, this.execution);
      await executeInTurn(alone, workerId, this.execution, waiting);
    } finally {
      waiting.stop();
    }
  }

  private async releaseRunsInHand(graceMs: number): Promise<void> {
    try {
      const released = await releaseHeldRuns(this.options.db, this.id);
      this.options.logger.warn({ graceMs, released }, 'shutdown grace period over: runs still in hand handed back to the queue');
    } catch (error) {
      this.options.logger.warn({ err: error, graceMs }, 'shutdown grace period over: could not hand runs back; their leases will expire');
    }
  }

  /**
   * Every half lease: runs no claim can hand to a worker leave the queue, runs whose worker died go back to it, and
   * runs held for a paused workflow that is paused no longer become due.
   */
  private async sweep(leaseMs: number): Promise<void> {
    if (this.sweeping || performance.now() - this.lastSweep < leaseMs / 2) return;
    this.sweeping = true;
    this.lastSweep = performance.now();
    try {
      const cancelled = await cancelRunsWithoutEvent(this.options.db);
      if (cancelled > 0) this.options.logger.warn({ cancelled, reason: EVENT_GONE }, 'cancelled runs whose event is gone');
      const released = await releaseExpiredLeases(this.options.db, this.options.logger);
      if (released > 0) this.options.logger.warn({ released }, 'released runs whose worker lease expired');
      const stranded = await releaseStrandedRuns(this.options.db);
      if (stranded > 0) this.options.logger.warn({ stranded }, 'made due again runs held for a paused workflow that is paused no longer');
    } finally {
      this.sweeping = false;
    }
  }

  private idle(): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.waiting.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, this.options.pollIntervalMs ?? 1000);
      this.waiting.add(wake);
    });
  }
}

/** Waits for `promise`, at most `ms`. */
async function settledWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
