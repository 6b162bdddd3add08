import type { WalflowDatabase } from '@walflow/core';
import { waitFor } from '@walflow/testing/runtime';
import { sql, type Kysely } from 'kysely';

/**
 * Waits until walflow has recorded every committed event of the tenant and finished every run. One statement, so
 * one snapshot: a run records its follow-up events (email.sent) in the outbox before it stops being active, and
 * the dispatcher deletes outbox rows in the transaction that queues their runs, so nothing slips between the two.
 */
export async function waitUntilSettled(db: Kysely<WalflowDatabase>, tenant: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    'walflow to record every event and finish every run',
    async () => {
      const { rows } = await sql<{ pending: number }>`
        SELECT (SELECT count(*) FROM walflow.outbox WHERE tenant_id = ${tenant})
             + (SELECT count(*) FROM walflow.workflow_runs WHERE tenant_id = ${tenant} AND status IN ('queued', 'running')) AS pending`.execute(db);
      return Number(rows[0]?.pending) === 0;
    },
    { timeoutMs, intervalMs: 100 },
  );
}
