import type { WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';

export interface LeaseKeeper {
  /** Aborts once the lease is found taken over: the attempt must stop and record nothing. */
  lost: AbortSignal;
  stop(): void;
}

/**
 * Keeps a leased run with its worker for as long as the worker executes it: the lease is extended every third
 * of its length, so a run whose actions take longer than the lease (several webhooks, a slow mail server) is
 * never taken over, and its actions performed again, while this worker is still at it. Only a worker that
 * stops extending (its process died or hangs) loses its runs, when the lease runs out.
 */
export function keepLease(db: Kysely<WalflowDatabase>, runId: string, workerId: string, leaseMs: number, logger: Logger): LeaseKeeper {
  const lost = new AbortController();
  let extending = false;
  const extend = async (): Promise<void> => {
    if (extending) return;
    extending = true;
    try {
      const { rows } = await sql<{ id: string }>`
        UPDATE walflow.workflow_runs SET locked_until = now() + ${leaseMs} * interval '1 millisecond'
         WHERE id = ${runId} AND status = 'running' AND locked_by = ${workerId}
        RETURNING id`.execute(db);
      if (rows.length === 0) {
        clearInterval(timer);
        lost.abort();
      }
    } catch (error) {
      // The next tick tries again; the fenced writes of the attempt decide in the end.
      logger.warn({ err: error, runId }, 'could not extend the lease of a run');
    } finally {
      extending = false;
    }
  };
  const timer = setInterval(() => void extend(), leaseMs / 3);
  timer.unref();
  return { lost: lost.signal, stop: () => clearInterval(timer) };
}
