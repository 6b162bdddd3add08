import type { WalflowDatabase } from '@walflow/core';
import { WorkerPool, type Dispatcher } from '@walflow/executor';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalEvent, keptWarnings, openDispatcher } from './fixtures.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
let dispatcher: Dispatcher;

beforeAll(async () => {
  ({ db, dispatcher } = await openDispatcher(database, [
    { tenant: 'orphans', name: 'on-approval', trigger: { event: 'policy.approved' }, actions: [{ type: 'emit_event', event: 'policy.noted' }] },
  ]));
});
afterAll(() => db.destroy());

describe('queued runs whose event is gone', () => {
  // Prune and row deletes keep such events; dropping or truncating a partition by hand does not. A claim never
  // hands a run without its event to a worker, so with only two runs a claim, the four at the head of the queue
  // would be claimed and left by every claim for ever, and the runs behind them never executed.
  it('are cancelled with the reason, and the runs queued behind them execute', async () => {
    const threeDaysAgo = Date.now() - 3 * 86_400_000;
    const lost = [1, 2, 3, 4].map((n) => ({ ...approvalEvent('orphans', n), committedAt: new Date(threeDaysAgo + n).toISOString() }));
    await dispatcher.dispatch({ events: lost, parked: [], checkpoint: null });
    // Days without a daily partition are kept in the default one.
    await sql`TRUNCATE walflow.events_default`.execute(db);
    const kept = [5, 6, 7].map((n) => approvalEvent('orphans', n));
    await dispatcher.dispatch({ events: kept, parked: [], checkpoint: null });

    const { logger, warnings } = keptWarnings();
    const pool = new WorkerPool({ db, logger, concurrency: 1, claimBatchSize: 2, leaseMs: 400, pollIntervalMs: 50 });
    pool.start();
    try {
      await waitFor('the runs of the events kept to succeed', async () => {
        const { rows } = await sql<{ succeeded: number }>`
          SELECT count(*)::int AS succeeded FROM walflow.workflow_runs
           WHERE tenant_id = 'orphans' AND status = 'succeeded' AND event_id = ANY (${kept.map((event) => event.id)}::uuid[])`.execute(db);
        return rows[0]!.succeeded === kept.length || undefined;
      }, { timeoutMs: 20_000 });
    } finally {
      await pool.stop();
    }
    const orphans = await db
      .selectFrom('walflow.workflow_runs')
      .select(['status', 'last_error', 'finished_at'])
      .where('event_id', 'in', lost.map((event) => event.id))
      .execute();
    expect(orphans).toHaveLength(4);
    for (const run of orphans) {
      expect(run).toMatchObject({ status: 'cancelled', last_error: 'its event is gone from walflow.events (a partition dropped or truncated by hand)' });
      expect(run.finished_at).not.toBeNull();
    }
    expect(warnings).toContain('cancelled queued runs whose event is gone (a partition of walflow.events dropped or truncated by hand)');
  });
});
