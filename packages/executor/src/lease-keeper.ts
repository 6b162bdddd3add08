import type { WalflowDatabase } from '@walflow/core';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { extendLease } from './run-leases.js';

export interface LeaseKeeper {
  /** Aborts once the lease is found taken over, or has run out while it could not be extended: the attempt must stop and record nothing. */
  lost: AbortSignal;
  stop(): void;
}

/**
 * Keeps a leased run with its worker for as long as the worker executes it: the lease is extended before the
 * first action and then every third of its length, so a run whose actions take longer than the lease (several
 * webhooks, a slow mail server) is never taken over, and its actions performed again, while this worker is
 * still at it. Only a worker that stops extending (its process died or hangs) loses its runs. Resolves to null
 * when the lease is already another worker's: the run must not be executed at all.
 */
export async function keepLease(db: Kysely<WalflowDatabase>, runId: string, workerId: string, leaseMs: number, logger: Logger): Promise<LeaseKeeper | null> {
  const firstSent = performance.now();
  if (!(await extendLease(db, runId, workerId, leaseMs))) return null;
  const lost = new AbortController();
  let extending = false;
  let stopped = false;
  const loseIt = (): void => {
    clearInterval(timer);
    clearTimeout(runsOut);
    lost.abort();
  };
  // Once the lease has run out unextended (this worker cut off from the database, which others still reach, or
  // an extension that hangs), another worker may take the run: the action in flight stops rather than run beside
  // its repeat. Counted from when the last extension that held was sent, which is no later than the server's.
  let runsOut = setTimeout(loseIt, leaseMs - (performance.now() - firstSent));
  const extend = async (): Promise<void> => {
    if (extending) return;
    extending = true;
    const sent = performance.now();
    try {
      const held = await extendLease(db, runId, workerId, leaseMs);
      // An extension still on its way when the attempt ended sets no timer: it would hold the process up to a lease.
      if (stopped) return;
      if (held) {
        clearTimeout(runsOut);
        runsOut = setTimeout(loseIt, leaseMs - (performance.now() - sent));
      } else loseIt();
    } catch (error) {
      // The next tick tries again; the fenced writes of the attempt decide in the end.
      logger.warn({ err: error, runId }, 'could not extend the lease of a run');
    } finally {
      extending = false;
    }
  };
  const timer = setInterval(() => void extend(), leaseMs / 3);
  timer.unref();
  return {
    lost: lost.signal,
    stop: () => {
      stopped = true;
      clearInterval(timer);
      clearTimeout(runsOut);
    },
  };
}
