import { randomUUID } from 'node:crypto';
import type { EventEnvelope, WalflowDatabase } from '@walflow/core';
import type { Dispatcher } from '@walflow/executor';
import { createDatabase } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalEvent, openDispatcher, runTableScansSoFar, silentLogger } from '../../server/test/fixtures.js';
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

/** The two indexes the lookup may read: the runs' unique key (by event) and the chain index. */
const LOOKUP_INDEXES = ['walflow.workflow_runs_caused_chain', 'walflow.workflow_runs_event_workflow_replay_key'];

/**
 * Whether the workflow ran in `root`'s chain for `event`'s aggregate; whether the lookup scanned all of
 * workflow_runs, and whether it read any index but LOOKUP_INDEXES.
 */
async function lookUp(root: EventEnvelope, event: EventEnvelope): Promise<{ ran: boolean; sequentialScans: number; otherIndexesRead: string[] }> {
  return session.transaction().execute(async (trx) => {
    // Counts not yet reported to the statistics: take the difference.
    const scans = async (): Promise<{ sequential: number; byIndex: Map<string, number> }> => {
      const indexes = await sql<{ index: string; idx_scan: string }>`
        SELECT i.indexrelid::regclass::text AS index, pg_stat_get_xact_numscans(i.indexrelid) AS idx_scan
          FROM pg_index i WHERE i.indrelid = 'walflow.workflow_runs'::regclass`.execute(trx);
      return { sequential: await runTableScansSoFar(trx), byIndex: new Map(indexes.rows.map((row) => [row.index, Number(row.idx_scan)])) };
    };
    const before = await scans();
    const ran = await ranInChain(trx, workflowId, root.id, event);
    const after = await scans();
    const otherIndexesRead = [...after.byIndex].filter(([index, count]) => count > (before.byIndex.get(index) ?? 0) && !LOOKUP_INDEXES.includes(index)).map(([index]) => index);
    return { ran, sequentialScans: after.sequential - before.sequential, otherIndexesRead };
  });
}

describe('the loop guard on a large history', () => {
  it("finds a chain's first run by its event and a caused run by the chain index, and reads nothing else", async () => {
    const roots = Array.from({ length: 5000 }, (_, n) => approvalEvent('chains', n));
    for (let first = 0; first < roots.length; first += 1000) {
      await dispatcher.dispatch({ events: roots.slice(first, first + 1000), parked: [], checkpoint: null });
    }
    const root = roots[0]!;
    // Caused by the first root, on another aggregate: it fires, and its run is in the chain index only.
    await dispatcher.dispatch({ events: [causedBy(root, 9000)], parked: [], checkpoint: null });
    // Written by an application (as the owner) inside another chain: its run belongs to that chain, not its own.
    const inAnotherChain = { ...approvalEvent('chains', 7000), metadata: { correlationId: randomUUID() } };
    await dispatcher.dispatch({ events: [inAnotherChain], parked: [], checkpoint: null });
    await sql`ANALYZE walflow.workflow_runs`.execute(db);

    const byIndexOnly = { sequentialScans: 0, otherIndexesRead: [] };
    expect(await lookUp(root, causedBy(root, 0))).toEqual({ ran: true, ...byIndexOnly });
    expect(await lookUp(root, causedBy(root, 9000))).toEqual({ ran: true, ...byIndexOnly });
    expect(await lookUp(root, causedBy(root, 1))).toEqual({ ran: false, ...byIndexOnly });
    expect(await lookUp(inAnotherChain, causedBy(inAnotherChain, 7000))).toEqual({ ran: false, ...byIndexOnly });
  });

  it('counts, in a chain a replay started, the runs of that replay and of the events caused down it, and only those', async () => {
    const root = approvalEvent('chains', 20_000);
    await dispatcher.dispatch({ events: [root], parked: [], checkpoint: null });
    const replayId = `replay-${randomUUID()}`;
    const inReplayChain = (n: number): EventEnvelope => ({ ...causedBy(root, n), metadata: { ...causedBy(root, n).metadata, replayId } });
    // A live run of an event caused down the chain replay `replayId` started, on aggregate p20001.
    await dispatcher.dispatch({ events: [inReplayChain(20_001)], parked: [], checkpoint: null });
    const decidedAs = (event: EventEnvelope, deciding: string | null) => session.transaction().execute((trx) => ranInChain(trx, workflowId, root.id, event, deciding));
    // Live, down the replay's chain, and by the replay itself: that run counts.
    expect(await decidedAs(inReplayChain(20_001), null)).toBe(true);
    expect(await decidedAs(causedBy(root, 20_001), replayId)).toBe(true);
    // Down the live chain, and by another replay: it does not, and the live run of the chain's first event counts
    // only for the live chain.
    expect(await decidedAs(causedBy(root, 20_001), null)).toBe(false);
    expect(await decidedAs(causedBy(root, 20_001), 'another-replay')).toBe(false);
    expect(await decidedAs(causedBy(root, 20_000), null)).toBe(true);
    expect(await decidedAs(inReplayChain(20_000), null)).toBe(false);
  });

  it('blocks, in one batch, the second event of a chain for an aggregate the workflow fired for earlier in that batch', async () => {
    const root = approvalEvent('chains', 40_000);
    await dispatcher.dispatch({ events: [root], parked: [], checkpoint: null });
    // Neither run is written when the second event is decided: only the batch's own record can block it.
    const first = causedBy(root, 40_001);
    const second = causedBy(root, 40_001);
    const result = await dispatcher.dispatch({ events: [first, second], parked: [], checkpoint: null });
    expect(result).toMatchObject({ recorded: 2, runsQueued: 1, decisions: { fired: 1, loop_blocked: 1 } });
    const blocked = await db.selectFrom('walflow.decisions').select('outcome').where('event_id', '=', second.id).executeTakeFirstOrThrow();
    expect(blocked.outcome).toBe('loop_blocked');
  });

  it('in one batch, tells a replay\'s chain from the live one, and aggregates apart however their text reads', async () => {
    const root = approvalEvent('chains', 30_000);
    await dispatcher.dispatch({ events: [root], parked: [], checkpoint: null });
    const live = causedBy(root, 30_001);
    const downReplay = { ...causedBy(root, 30_001), metadata: { ...causedBy(root, 30_001).metadata, replayId: `replay-${randomUUID()}` } };
    const split = (aggregateType: string, aggregateId: string): EventEnvelope => ({ ...causedBy(root, 30_002), aggregateType, aggregateId });
    const result = await dispatcher.dispatch({ events: [live, downReplay, split('a|b', 'c'), split('a', 'b|c')], parked: [], checkpoint: null });
    expect(result).toMatchObject({ recorded: 4, runsQueued: 4 });
  });
});
