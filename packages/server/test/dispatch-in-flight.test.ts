import { BatchProgress, isWalflowError, type DispatchBatch, type DispatchResult, type EventEnvelope, type WalflowDatabase } from '@walflow/core';
import { PoisonIsolatingDispatcher, type Dispatcher } from '@walflow/executor';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalEvent, countsFor, openDispatcher, silentLogger } from './fixtures.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
let dispatcher: Dispatcher;

beforeAll(async () => {
  ({ db, dispatcher } = await openDispatcher(database, [
    { tenant: 'guarded', name: 'once-an-hour', trigger: { event: 'policy.approved' }, cooldown: { seconds: 3600 }, actions: [{ type: 'emit_event', event: 'x.y' }] },
    { tenant: 'unguarded', name: 'every-time', trigger: { event: 'policy.approved' }, actions: [{ type: 'emit_event', event: 'x.y' }] },
  ]));
});
afterAll(() => db.destroy());

let sequence = 100;
const approval = (tenantId: string): EventEnvelope => approvalEvent(tenantId, ++sequence);

/** A dispatch whose settling the test can observe without awaiting it. */
function observed(batch: DispatchBatch): { result: Promise<DispatchResult>; progress: BatchProgress; settled: () => boolean } {
  let settled = false;
  const progress = new BatchProgress();
  const result = dispatcher.dispatch({ ...batch, progress });
  result.then(
    () => (settled = true),
    () => (settled = true),
  );
  return { result, progress, settled: () => settled };
}

/**
 * Both batches hold an open transaction and wait in walflow (idle for a while, not between two statements), or
 * the second one has already finished (the guarantee broke).
 */
async function bothWaitingOrSecondDone(second: { settled: () => boolean }): Promise<void> {
  await waitFor(
    'both batches to wait in their transactions',
    async () => {
      if (second.settled()) return true;
      const { rows } = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND state = 'idle in transaction' AND clock_timestamp() - state_change > interval '300 milliseconds'`.execute(db);
      return rows[0]!.n >= 2;
    },
    { timeoutMs: 5_000 },
  );
}

/** Two one-event batches dispatched at once behind `before`, returned once both wait in their transactions. */
async function twoAtOnce(before: BatchProgress, first: EventEnvelope, second: EventEnvelope) {
  const a = observed({ events: [first], parked: [], checkpoint: null, previous: before });
  const b = observed({ events: [second], parked: [], checkpoint: null, previous: a.progress });
  await bothWaitingOrSecondDone(b);
  return { a, b };
}

/** The batch before, with its events inserted and its commit still to come. */
function recordedNotCommitted(): BatchProgress {
  const progress = new BatchProgress();
  progress.markRecorded();
  return progress;
}

/** Fails instead of hanging: were the guards read too early, the two batches would wait on each other's locks. */
async function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function outcomeOf(event: EventEnvelope): Promise<string | undefined> {
  const row = await db.selectFrom('walflow.decisions').select('outcome').where('event_id', '=', event.id).executeTakeFirst();
  return row?.outcome;
}

describe('two batches recorded at once', () => {
  it("the second batch's guards read the first batch's effects: they wait for its commit", async () => {
    const first = approval('guarded');
    const second = approval('guarded');
    const before = recordedNotCommitted();
    const { a, b } = await twoAtOnce(before, first, second);
    before.markCommitted();
    await within(10_000, Promise.all([a.result, b.result]));
    // As if they had come one by one: the first fires and starts the cooldown, the second falls inside it.
    expect([await outcomeOf(first), await outcomeOf(second)]).toEqual(['fired', 'cooldown']);
  });

  it("the loop guard of the second batch sees the run the first batch queued", async () => {
    const root = approval('unguarded');
    const workflowId = (await db.selectFrom('walflow.workflows').select('id').where('tenant_id', '=', 'unguarded').executeTakeFirstOrThrow()).id;
    // What the workflow's own action would emit for the same aggregate: the same workflow must not run again.
    const echo = { ...approval('unguarded'), aggregateId: root.aggregateId, metadata: { correlationId: root.id, causationId: root.id, depth: 1, workflowId } };
    const before = recordedNotCommitted();
    const { a, b } = await twoAtOnce(before, root, echo);
    before.markCommitted();
    await within(10_000, Promise.all([a.result, b.result]));
    expect([await outcomeOf(root), await outcomeOf(echo)]).toEqual(['fired', 'loop_blocked']);
  });

  it('the second batch commits only after the first, even with nothing to wait for in between', async () => {
    const first = approval('unguarded');
    const second = approval('unguarded');
    const before = recordedNotCommitted();
    const { b } = await twoAtOnce(before, first, second);
    expect(b.settled()).toBe(false);
    expect(await outcomeOf(second)).toBeUndefined();
    before.markCommitted();
    await expect(b.result).resolves.toMatchObject({ recorded: 1, runsQueued: 1 });
    expect([await outcomeOf(first), await outcomeOf(second)]).toEqual(['fired', 'fired']);
  });

  it("the second batch's events take a later transaction id, the order the JetStream sink publishes in", async () => {
    const first = approval('unguarded');
    const second = approval('unguarded');
    const before = new BatchProgress();
    const { a, b } = await twoAtOnce(before, first, second);
    before.markCommitted();
    await within(10_000, Promise.all([a.result, b.result]));
    const { rows } = await sql<{ id: string }>`
      SELECT id::text FROM walflow.events WHERE id IN (${first.id}, ${second.id}) ORDER BY recorded_xid`.execute(db);
    expect(rows.map((row) => row.id)).toEqual([first.id, second.id]);
  });

  it('when the batch before fails, the batch records nothing, and nothing of it is parked as poison', async () => {
    const event = approval('unguarded');
    const before = await countsFor(db, 'unguarded');
    const failedBefore = new BatchProgress();
    failedBefore.markFailed(new Error('the batch before failed'));
    const isolating = new PoisonIsolatingDispatcher(dispatcher, silentLogger);
    const error: unknown = await isolating.dispatch({ events: [event], parked: [], checkpoint: null, previous: failedBefore }).catch((caught: unknown) => caught);
    expect(isWalflowError(error, 'previous_batch_failed')).toBe(true);
    expect(await countsFor(db, 'unguarded')).toEqual(before);
  });
});
