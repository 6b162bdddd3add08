import type { WalflowDatabase } from '@walflow/core';
import { EVENT_GONE, WorkerPool, type Dispatcher } from '@walflow/executor';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalEvent, keptWarnings, openDispatcher } from './fixtures.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
let dispatcher: Dispatcher;

beforeAll(async () => {
  ({ db, dispatcher } = await openDispatcher(database, [
    // Its runs are held by the claim that executes them.
    { tenant: 'orphans', name: 'held', trigger: { event: 'policy.approved' }, actions: [{ type: 'emit_event', event: 'policy.noted' }] },
    // Its runs are leased (a concurrency limit), with one attempt: a lease that runs out would make such a run dead.
    {
      tenant: 'orphans',
      name: 'leased',
      trigger: { event: 'policy.approved' },
      concurrency: { limit: 1 },
      ordering: 'none',
      retry: { maxAttempts: 1 },
      actions: [{ type: 'emit_event', event: 'policy.counted' }],
    },
  ]));
});
afterAll(() => db.destroy());

describe('runs whose event is gone', () => {
  // Prune and row deletes keep such events; dropping or truncating a partition by hand does not. A claim never
  // hands a run without its event to a worker: with only two runs a claim, the held runs at the head of the queue
  // would be claimed and left by every claim for ever, and the runs behind them never executed; the leased ones
  // would wait out their lease and end dead as if their worker had died.
  it('are cancelled with the reason, and the runs queued behind them execute', async () => {
    const threeDaysAgo = Date.now() - 3 * 86_400_000;
    const lost = [1, 2, 3, 4].map((n) => ({ ...approvalEvent('orphans', n), committedAt: new Date(threeDaysAgo + n).toISOString() }));
    const kept = [5, 6, 7].map((n) => approvalEvent('orphans', n));
    await dispatcher.dispatch({ events: lost, parked: [], checkpoint: null });
    // Days without a daily partition are kept in the default one.
    await sql`TRUNCATE walflow.events_default`.execute(db);
    await dispatcher.dispatch({ events: kept, parked: [], checkpoint: null });
    // Due only once the pool's first sweep is over, so that claims take them first, the kept runs behind the lost.
    const dueIn = (events: typeof lost, ms: number) =>
      sql`UPDATE walflow.workflow_runs SET next_attempt_at = now() + ${ms} * interval '1 millisecond'
           WHERE event_id = ANY (${events.map((event) => event.id)}::uuid[])`.execute(db);
    await dueIn(lost, 300);
    await dueIn(kept, 500);

    const { logger, warnings } = keptWarnings();
    // A sweep every second: the claims at 300 ms hold the lost runs, and lease one, long before the next.
    const pool = new WorkerPool({ db, logger, concurrency: 1, claimBatchSize: 2, leaseMs: 2000, pollIntervalMs: 50 });
    pool.start();
    try {
      await waitFor('the runs of the events kept to succeed', async () => {
        const { rows } = await sql<{ succeeded: number }>`
          SELECT count(*)::int AS succeeded FROM walflow.workflow_runs
           WHERE status = 'succeeded' AND event_id = ANY (${kept.map((event) => event.id)}::uuid[])`.execute(db);
        return rows[0]!.succeeded === 2 * kept.length || undefined;
      }, { timeoutMs: 20_000 });
    } finally {
      await pool.stop();
    }
    const runs = await db.selectFrom('walflow.workflow_runs').select(['status', 'last_error', 'finished_at']).where('event_id', 'in', lost.map((event) => event.id)).execute();
    expect(runs).toHaveLength(2 * lost.length);
    for (const run of runs) {
      expect(run).toMatchObject({ status: 'cancelled', last_error: EVENT_GONE });
      expect(run.finished_at).not.toBeNull();
    }
    expect(warnings).toContain('cancelled runs whose event is gone');
  });
});
