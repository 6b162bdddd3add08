import { randomUUID } from 'node:crypto';
import { WalflowError, type WalflowDatabase } from '@walflow/core';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { runActions } from './actions/run-actions.js';
import { afterFailure, type RetryPolicyOptions } from './retry-policy.js';
import { claimRuns, completeRun, failRun, releaseExpiredLeases, type ClaimedRun } from './run-queue.js';
import { getWorkflowById } from './workflow-store.js';

export interface WorkerPoolOptions {
  db: Kysely<WalflowDatabase>;
  logger: Logger;
  /** Runs executed at once by this process. @default 4 */
  concurrency?: number;
  /** Runs one worker claims per query. @default 10 */
  claimBatchSize?: number;
  /** How often an idle worker looks for due runs (retries, runs queued by other processes). @default 1000 */
  pollIntervalMs?: number;
  /** How long a claimed run stays with its worker before another may take it over. @default 60000 */
  leaseMs?: number;
  retry?: RetryPolicyOptions;
}

/** Executes queued workflow runs: claim, run the actions, record success, or schedule a retry or death. */
export class WorkerPool {
  private readonly id = `worker-${randomUUID()}`;
  private loops: Promise<void>[] = [];
  private stopping = false;
  private waiting = new Set<() => void>();
  private lastLeaseSweep = 0;

  constructor(private readonly options: WorkerPoolOptions) {}

  start(): void {
    if (this.loops.length > 0) return;
    this.stopping = false;
    const concurrency = this.options.concurrency ?? 4;
    this.loops = Array.from({ length: concurrency }, (_, slot) => this.loop(`${this.id}/${slot}`));
  }

  /** Finishes the runs in hand and stops claiming new ones. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.notify();
    await Promise.all(this.loops);
    this.loops = [];
  }

  /** Wakes idle workers: runs were just queued. */
  notify(): void {
    for (const wake of this.waiting) wake();
    this.waiting.clear();
  }

  private async loop(workerId: string): Promise<void> {
    const { db, logger, claimBatchSize = 10, leaseMs = 60_000 } = this.options;
    while (!this.stopping) {
      try {
        await this.sweepExpiredLeases(leaseMs);
        const runs = await claimRuns(db, workerId, claimBatchSize, leaseMs);
        if (runs.length === 0) {
          await this.idle();
          continue;
        }
        for (const run of runs) await this.execute(run, workerId);
      } catch (error) {
        logger.error({ err: error, workerId }, 'worker loop failed; retrying');
        await this.idle();
      }
    }
  }

  private async execute(run: ClaimedRun, workerId: string): Promise<void> {
    const { db, logger } = this.options;
    try {
      const workflow = await getWorkflowById(db, run.workflowId);
      if (!workflow) throw new WalflowError('not_found', `workflow ${run.workflowId} no longer exists`);
      await db.transaction().execute(async (trx) => {
        await runActions(workflow.definition.actions, { event: run.event, workflow, runId: run.id, trx });
        if (!(await completeRun(trx, run.id, workerId))) {
          throw new WalflowError('action_failed', 'the run was taken over by another worker (lease expired)');
        }
      });
      logger.debug({ runId: run.id, workflowId: run.workflowId, eventId: run.event.id }, 'run succeeded');
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const verdict = afterFailure(run.attempts, run.maxAttempts, this.options.retry);
      await failRun(db, run.id, workerId, message, verdict.kind === 'retry' ? verdict.delayMs : null);
      logger.warn({ err: error, runId: run.id, attempts: run.attempts, verdict: verdict.kind }, 'run attempt failed');
    }
  }

  private async sweepExpiredLeases(leaseMs: number): Promise<void> {
    if (Date.now() - this.lastLeaseSweep < leaseMs / 2) return;
    this.lastLeaseSweep = Date.now();
    const released = await releaseExpiredLeases(this.options.db);
    if (released > 0) this.options.logger.warn({ released }, 'released runs whose worker lease expired');
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
