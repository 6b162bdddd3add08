import type { WalflowDatabase } from '@walflow/core';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { extendLeases } from './run-leases.js';

export interface WaitingLeases {
  /** The run begins: keepLease extends its lease from now on. */
  begin(runId: string): void;
  stop(): void;
}

/**
 * Keeps the leases of runs a worker has leased and not yet begun. A worker executes its leased runs one after
 * another (after a failed batch, up to a whole claim of them), and a run waiting its turn behind slow ones must
 * not lose its lease meanwhile: the sweep would count an attempt it never made, or on its last attempt bury it,
 * while its worker is alive and at work. The leases are extended at once (a claim's leases run from its
 * transaction's start, and a batch before may have taken long) and then every third of their length; what the
 * keeper still holds when it stops expires with its lease, as the runs of a worker that died do.
 */
export async function keepWaitingLeases(
  db: Kysely<WalflowDatabase>,
  runIds: readonly string[],
  workerId: string,
  leaseMs: number,
  logger: Logger,
): Promise<WaitingLeases> {
  const waiting = new Set(runIds);
  let extending = false;
  const extend = async (): Promise<void> => {
    if (extending || waiting.size === 0) return;
    extending = true;
    try {
      // Past a run whose row is locked (one that began while this statement was on its way, its action now fenced)
      // rather than waiting for it. A run whose lease is gone is found so by keepLease when its turn comes.
      await extendLeases(db, [...waiting], workerId, leaseMs, { skipLocked: true });
    } catch (error) {
      // The next tick tries again; keepLease and the fenced writes decide in the end.
      logger.warn({ err: error, runs: waiting.size }, 'could not extend the leases of runs waiting their turn');
    } finally {
      extending = false;
    }
  };
  await extend();
  const timer = setInterval(() => void extend(), leaseMs / 3);
  timer.unref();
  return {
    begin: (runId) => void waiting.delete(runId),
    stop: () => {
      clearInterval(timer);
      waiting.clear();
    },
  };
}
