import type { WalflowDatabase } from '@walflow/core';
import type { Dispatcher } from '@walflow/executor';
import { createDatabase } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalEvent, openDispatcher, runTableScansSoFar, silentLogger } from './fixtures.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
let dispatcher: Dispatcher;
/** One connection, so every claim below runs in one session and shares its cached plans. */
let session: Kysely<WalflowDatabase>;

beforeAll(async () => {
  ({ db, dispatcher } = await openDispatcher(database, [
    { tenant: 'plans', name: 'notify', trigger: { event: 'policy.approved' }, actions: [{ type: 'create_notification', recipient: 'ops', title: 'approved' }] },
  ]));
  session = createDatabase(database.url, silentLogger, { max: 1 });
});
afterAll(async () => {
  await session.destroy();
  await db.destroy();
});

async function queueRuns(from: number, count: number): Promise<void> {
  for (let first = from; first < from + count; first += 1000) {
    const events = Array.from({ length: Math.min(1000, from + count - first) }, (_, i) => approvalEvent('plans', first + i));
    await dispatcher.dispatch({ events, parked: [], checkpoint: null });
  }
}

/**
 * A claim of up to `limit` runs, held or leased, rolled back: how many runs it claimed and how often it scanned
 * all of workflow_runs.
 */
async function claim(limit: number, hold: boolean): Promise<{ claimed: number; sequentialScans: number }> {
  return session.connection().execute(async (conn) => {
    await sql`BEGIN`.execute(conn);
    try {
      const before = await runTableScansSoFar(conn);
      const claimed = await sql<{ claimed: number }>`
        SELECT count(*)::int AS claimed FROM walflow.claim_runs('plans-worker', ${limit}, 30000, '{}'::text[], NULL, ${hold})`.execute(conn);
      return { claimed: claimed.rows[0]!.claimed, sequentialScans: (await runTableScansSoFar(conn)) - before };
    } finally {
      await sql`ROLLBACK`.execute(conn);
    }
  });
}

describe('a claim on a queue that grew since the session\'s first claims', () => {
  it('reads the runs it claims by id, never by scanning workflow_runs', async () => {
    // The session's first claims see a queue of ten runs: enough calls for PL/pgSQL to settle on generic plans.
    await queueRuns(0, 10);
    for (let i = 0; i < 8; i++) {
      expect((await claim(10, true)).claimed).toBe(10);
      expect((await claim(10, false)).claimed).toBe(10);
    }

    await queueRuns(10, 5000);

    expect(await claim(10, true)).toEqual({ claimed: 10, sequentialScans: 0 });
    expect(await claim(10, false)).toEqual({ claimed: 10, sequentialScans: 0 });
  });
});
