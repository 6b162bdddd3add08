import type { EventEnvelope, WalflowDatabase } from '@walflow/core';
import type { Dispatcher } from '@walflow/executor';
import { createDatabase } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalEvent, openDispatcher, silentLogger } from '../../server/test/fixtures.js';
import { ranInChain } from '../src/guard-state.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
let dispatcher: Dispatcher;
/** One connection, so a lookup and the count of its scans share a transaction. */
let session: Kysely<WalflowDatabase>;
let workflowId: string;

beforeAll(async () => {
  ({ db, dispatcher } = await openDispatcher(database, [
    { tenant: 'chains', name: 'notify', trigger: { event: 'policy.approved' }, actions: [{ type: 'create_notification', recipient: 'ops', title: 'approved' }] },
  ]));
  workflowId = (await db.selectFrom('walflow.workflows').select('id').where('tenant_id', '=', 'chains').executeTakeFirstOrThrow()).id;
  session = createDatabase(database.url, silentLogger, { max: 1 });
});
afterAll(async () => {
  await session.destroy();
  await db.destroy();
});

/** An event the workflow's own action emitted, in the chain `root` began, for aggregate `p<n>`. */
function causedBy(root: EventEnvelope, n: number): EventEnvelope {
  return { ...approvalEvent('chains', n), metadata: { correlationId: root.id, causationId: root.id, depth: 1, workflowId } };
}

/** Whether the workflow ran in `root`'s chain for `event`'s aggregate, and how often the lookup scanned all of workflow_runs. */
async function lookUp(root: EventEnvelope, event: EventEnvelope): Promise<{ ran: boolean; sequentialScans: number }> {
  return session.transaction().execute(async (trx) => {
    const sequentialScans = async (): Promise<number> =>
      Number((await sql<{ seq_scan: string }>`
        SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relid = 'walflow.workflow_runs'::regclass`.execute(trx)).rows[0]!.seq_scan);
    const before = await sequentialScans();
    const ran = await ranInChain(trx, workflowId, root.id, event);
    return { ran, sequentialScans: (await sequentialScans()) - before };
  });
}

describe('the loop guard on a large history', () => {
  it("finds a chain's first run by its event and a caused run by the chain index, scanning neither", async () => {
    const roots = Array.from({ length: 5000 }, (_, n) => approvalEvent('chains', n));
    for (let first = 0; first < roots.length; first += 1000) {
      await dispatcher.dispatch({ events: roots.slice(first, first + 1000), parked: [], checkpoint: null });
    }
    const root = roots[0]!;
    // Caused by the first root, on another aggregate: it fires, and its run is in the chain index only.
    await dispatcher.dispatch({ events: [causedBy(root, 9000)], parked: [], checkpoint: null });
    await sql`ANALYZE walflow.workflow_runs`.execute(db);

    expect(await lookUp(root, causedBy(root, 0))).toEqual({ ran: true, sequentialScans: 0 });
    expect(await lookUp(root, causedBy(root, 9000))).toEqual({ ran: true, sequentialScans: 0 });
    expect(await lookUp(root, causedBy(root, 1))).toEqual({ ran: false, sequentialScans: 0 });
  });
});
