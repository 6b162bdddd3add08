import { randomUUID } from 'node:crypto';
import type { WalflowDatabase } from '@walflow/core';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { ActionRuntime } from './actions/external-action.js';
import { executeRun, type ExecutionObserver } from './execute-run.js';
import type { RetryPolicyOptions } from './retry-policy.js';
import { claimRuns, releaseExpiredLeases, releaseHeldRuns } from './run-queue.js';

export interface WorkerPoolOptions {
  db: Kysely<WalflowDatabase>;
  logger: Logger;
  /** Runs executed at once by this process. @default 4 */
  concurrency?: number;
  /** Runs one worker claims per query; they share one lease deadline, so keep it small. @default 1 */
  claimBatchSize?: number;
  /** How often an idle worker looks for due runs (retries, runs queued by other processes). @default 1000 */
  pollIntervalMs?: number;
  /** How long a claimed run stays with its worker before another may take it over. @default 60000 */
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
  private lastLeaseSweep = 0;

  constructor(private readonly options: WorkerPoolOptions) {}

  start(): void {
    if (this.loops.length > 0) return;
    this.stopping = false;
    const concurrency = this.options.concurrency ?? 4;
    this.loops = Array.from({ length: concurrency }, (_, slot) => this.loop(`${this.id}/${slot}`));
  }

  /**
   * Stops claiming and waits for the runs in hand, at most `graceMs`; runs still going then are handed back to
   * the queue, so other workers take them over at once instead of when their leases expire.
   */
  async stop(graceMs = 30_000): Promise<void> {
    this.stopping = true;
    this.notify();
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), graceMs)));
    const finished = await Promise.race([Promise.all(this.loops).then(() => 'done' as const), graceOver]);
    clearTimeout(timer);
    if (finished === 'timeout') await this.releaseRunsInHand(graceMs);
    this.loops = [];
  }

  /** Wakes idle workers: runs were just queued. */
  notify(): void {
    for (const wake of this.waiting) wake();
    this.waiting.clear();
  }

  private async loop(workerId: string): Promise<void> {
    const { db, logger, claimBatchSize = 1, leaseMs = 60_000 } = this.options;
    while (!this.stopping) {
      try {
        await this.sweepExpiredLeases(leaseMs);
        const runs = await claimRuns(db, workerId, claimBatchSize, leaseMs);
        if (runs.length === 0) {
          await this.idle();
          continue;
        }
        for (const run of runs) {
          const result = await executeRun(run, workerId, {
            db,
            logger,
            runtime: this.options.runtime ?? { secrets: new Map(), webhookAllowHosts: [] },
            retry: this.options.retry,
            observer: this.options.observer,
          });
          logger.debug({ runId: run.id, workflowId: run.workflowId, eventId: run.event.id, result }, 'run attempt finished');
        }
      } catch (error) {
        logger.error({ err: error, workerId }, 'worker loop failed; retrying');
        await this.idle();
      }
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
