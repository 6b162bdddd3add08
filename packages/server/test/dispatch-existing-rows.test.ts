import { formatLsn, parseLsn, type EventEnvelope, type ParkedRow, type WalflowDatabase } from '@walflow/core';
import { discardDeadLetter, retryDeadLetter, type Dispatcher } from '@walflow/executor';
import { useTestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalEvent, openDispatcher } from './fixtures.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
let dispatcher: Dispatcher;

beforeAll(async () => {
  ({ db, dispatcher } = await openDispatcher(database, [
    ...['existing', 'reused', 'reused-in-batch', 'reused-redelivered'].map((tenant) => ({ tenant, name: 'on-approval', trigger: { event: 'policy.approved' }, actions: [{ type: 'emit_event' as const, event: 'x.y' }] })),
    { tenant: 'redelivered', name: 'three-an-hour', trigger: { event: 'policy.approved' }, rateLimits: [{ limit: 3, periodSeconds: 3600 }], actions: [{ type: 'emit_event' as const, event: 'x.y' }] },
  ]));
});
afterAll(() => db.destroy());

async function inOutbox(event: EventEnvelope): Promise<void> {
  await sql`INSERT INTO walflow.outbox (id, tenant_id, event_type, aggregate_type, aggregate_id, payload)
            VALUES (${event.id}, ${event.tenantId}, ${event.type}, ${event.aggregateType}, ${event.aggregateId}, ${JSON.stringify(event.payload)})`.execute(db);
}

describe('live dispatch over a run or decision that exists already', () => {
  it('decides nothing again for events delivered again: their guards are not counted twice', async () => {
    const [first, second, third, fourth] = [1, 2, 3, 4].map((n) => approvalEvent('redelivered', n));
    expect(await dispatcher.dispatch({ events: [first!, second!], parked: [], checkpoint: null })).toMatchObject({ recorded: 2, runsQueued: 2 });
    // PostgreSQL 15 forgets unsaved acknowledgements: the same transactions come again after a restart.
    expect(await dispatcher.dispatch({ events: [first!, second!], parked: [], checkpoint: null })).toMatchObject({ recorded: 0, duplicates: 2, runsQueued: 0 });
    // Two of the window's three runs are taken, not four: the third new event fires, the fourth meets the limit.
    await dispatcher.dispatch({ events: [third!, fourth!], parked: [], checkpoint: null });
    const outcomes = await db.selectFrom('walflow.decisions').select(['event_id', 'outcome']).where('tenant_id', '=', 'redelivered').execute();
    expect([first, second, third, fourth].map((event) => outcomes.filter((row) => row.event_id === event!.id).map((row) => row.outcome))).toEqual([
      ['fired'],
      ['fired'],
      ['fired'],
      ['rate_limited'],
    ]);
  });

  it('records the batch around it: no second run, no crash, every outbox row of the batch consumed', async () => {
    const first = approvalEvent('existing', 1);
    expect(await dispatcher.dispatch({ events: [first], parked: [], checkpoint: null })).toMatchObject({ recorded: 1, runsQueued: 1 });
    // An event with a queued run cannot be deleted: the run needs it.
    await expect(db.deleteFrom('walflow.events').where('id', '=', first.id).execute()).rejects.toThrow(/has a queued or running workflow run/);
    // Once the run is done, the event is gone (pruned, or deleted by hand), then delivered again with a new one.
    await db.updateTable('walflow.workflow_runs').set({ status: 'succeeded' }).where('event_id', '=', first.id).execute();
    await db.deleteFrom('walflow.events').where('id', '=', first.id).execute();
    const again = approvalEvent('existing', 1, first.id);
    const next = approvalEvent('existing', 2);
    await inOutbox(again);
    await inOutbox(next);

    const result = await dispatcher.dispatch({ events: [again, next], parked: [], checkpoint: null });

    expect(result).toMatchObject({ recorded: 2, duplicates: 0, runsQueued: 1 });
    const runs = await db.selectFrom('walflow.workflow_runs').select(['id', 'event_id']).where('tenant_id', '=', 'existing').orderBy('created_at').execute();
    expect(runs.map((run) => run.event_id)).toEqual([first.id, next.id]);
    const decisions = await db.selectFrom('walflow.decisions').select(['event_id', 'run_id']).where('tenant_id', '=', 'existing').orderBy('decided_at').execute();
    expect(decisions).toEqual([
      { event_id: first.id, run_id: runs[0]!.id },
      { event_id: next.id, run_id: runs[1]!.id },
    ]);
    const outbox = await db.selectFrom('walflow.outbox').select('id').where('tenant_id', '=', 'existing').execute();
    expect(outbox).toEqual([]);
  });
});

describe('an event id committed again by another transaction', () => {
  const letters = (tenant: string) =>
    db.selectFrom('walflow.dead_letters').select(['code', 'outbox_id', sql<number>`(raw->'payload'->>'n')::int`.as('n')]).where('tenant_id', '=', tenant).orderBy('id').execute();
  const recorded = async (tenant: string) =>
    (await db.selectFrom('walflow.events').select(sql<number>`(payload->>'n')::int`.as('n')).where('tenant_id', '=', tenant).orderBy('committed_at').execute()).map((row) => row.n);

  it('is parked with its row, not recorded beside the first with its runs passed over', async () => {
    const first = approvalEvent('reused', 1);
    await dispatcher.dispatch({ events: [first], parked: [], checkpoint: null });
    // An application that chooses outbox ids writes the same one again later.
    const reused = approvalEvent('reused', 2, first.id);
    const other = approvalEvent('reused', 3);
    expect(await dispatcher.dispatch({ events: [reused, other], parked: [], checkpoint: null })).toMatchObject({ recorded: 1, runsQueued: 1, parked: 1 });
    expect(await recorded('reused')).toEqual([1, 3]);
    expect(await letters('reused')).toEqual([{ code: 'event_id_reused', outbox_id: first.id, n: 2 }]);
    // Retried, it goes back under an id of its own, or it would be parked again for ever.
    const [letter] = await db.selectFrom('walflow.dead_letters').select('id').where('tenant_id', '=', 'reused').execute();
    const { outboxId } = await retryDeadLetter(db, letter!.id);
    expect(outboxId).not.toBe(first.id);
    const retried = await db.selectFrom('walflow.outbox').select(['id', sql<number>`(payload->>'n')::int`.as('n')]).where('tenant_id', '=', 'reused').execute();
    expect(retried).toEqual([{ id: outboxId, n: 2 }]);
    await db.deleteFrom('walflow.outbox').where('id', '=', outboxId).execute();
  });

  it('is parked when both transactions are in one batch: the first commit is recorded', async () => {
    const first = approvalEvent('reused-in-batch', 1);
    const again = approvalEvent('reused-in-batch', 2, first.id);
    expect(await dispatcher.dispatch({ events: [first, again], parked: [], checkpoint: null })).toMatchObject({ recorded: 1, runsQueued: 1, parked: 1 });
    expect(await recorded('reused-in-batch')).toEqual([1]);
    expect(await letters('reused-in-batch')).toEqual([{ code: 'event_id_reused', outbox_id: first.id, n: 2 }]);
  });

  it('is parked alone when the first commit comes again in the same batch, delivered again after a restart', async () => {
    const first = approvalEvent('reused-redelivered', 1);
    await dispatcher.dispatch({ events: [first], parked: [], checkpoint: null });
    const again = approvalEvent('reused-redelivered', 2, first.id);
    expect(await dispatcher.dispatch({ events: [first, again], parked: [], checkpoint: null })).toMatchObject({ recorded: 0, duplicates: 1, runsQueued: 0, parked: 1 });
    expect(await recorded('reused-redelivered')).toEqual([1]);
    // The redelivered first commit is no reuse of its own id: only the second transaction's row is parked.
    expect(await letters('reused-redelivered')).toEqual([{ code: 'event_id_reused', outbox_id: first.id, n: 2 }]);
  });
});

describe('a dead letter the outbox cannot take back', () => {
  it('is refused with the reason when retried, and stays open', async () => {
    // Parked before the outbox had its limits (0028): an aggregate id of 1,500 bytes.
    const { id } = await db
      .insertInto('walflow.dead_letters')
      .values({ outbox_id: null, tenant_id: 'too-long', event_type: 'policy.approved', code: 'dispatch_failed', reason: 'index row size', raw: JSON.stringify({ id: crypto.randomUUID(), event_type: 'policy.approved', tenant_id: 'too-long', aggregate_id: 'x'.repeat(1500), payload: {} }) })
      .returning('id')
      .executeTakeFirstOrThrow();
    await expect(retryDeadLetter(db, id)).rejects.toMatchObject({ code: 'payload_invalid', message: expect.stringMatching(/cannot go back into the outbox as it is \(.*outbox_aggregate_id_limit.*\): discard it/) });
    expect(await db.selectFrom('walflow.dead_letters').select('resolved_at').where('id', '=', id).executeTakeFirstOrThrow()).toEqual({ resolved_at: null });
  });
});

describe('a parked row delivered again', () => {
  const parkedAt = (commitLsn: string, reason: string): ParkedRow => ({
    outboxId: '0193a5b0-0000-7000-8000-00000000d1e1',
    tenantId: 'existing',
    eventType: 'policy.approved',
    code: 'payload_invalid',
    reason,
    raw: { id: '0193a5b0-0000-7000-8000-00000000d1e1', event_type: 'policy.approved', payload: '[]' },
    commit: { xid: '7', commitLsn: parseLsn(commitLsn), committedAt: new Date().toISOString() },
  });
  const letters = () =>
    db.selectFrom('walflow.dead_letters').select(['id', 'reason', 'resolution']).where('outbox_id', '=', '0193a5b0-0000-7000-8000-00000000d1e1').orderBy('commit_lsn').execute();

  it('leaves the dead letter as the operator left it; a later commit of the row (a retry, a reused id) is a letter of its own', async () => {
    await dispatcher.dispatch({ events: [], parked: [parkedAt('0/5000', 'first')], checkpoint: null });
    const [first] = await letters();
    await discardDeadLetter(db, first!.id);

    // PostgreSQL 15 forgets confirmed_flush across a restart: the same transaction comes back.
    await dispatcher.dispatch({ events: [], parked: [parkedAt('0/5000', 'first, delivered again')], checkpoint: null });
    expect(await letters()).toEqual([{ id: first!.id, reason: 'first', resolution: 'discarded' }]);

    await dispatcher.dispatch({ events: [], parked: [parkedAt('0/6000', 'retried, and failed again')], checkpoint: null });
    // Another row under the same id, parked while the letter before is open: neither row is lost.
    await dispatcher.dispatch({ events: [], parked: [parkedAt('0/7000', 'the id reused')], checkpoint: null });
    expect(await letters()).toEqual([
      { id: first!.id, reason: 'first', resolution: 'discarded' },
      { id: expect.any(String), reason: 'retried, and failed again', resolution: null },
      { id: expect.any(String), reason: 'the id reused', resolution: null },
    ]);
  });
});

describe('a parked row recorded after all, when its transaction came back', () => {
  it('is not retried into a second event under its id; the letter stays open until discarded', async () => {
    // Microseconds, as wal2json gives commit times: the check must not lose them.
    const event = { ...approvalEvent('recorded-after-all', 1), committedAt: new Date().toISOString().replace('Z', '654Z') };
    const parked: ParkedRow = {
      outboxId: event.id,
      tenantId: event.tenantId,
      eventType: event.type,
      code: 'dispatch_failed',
      reason: 'a condition failed',
      raw: { ...event, commitLsn: formatLsn(event.commitLsn) },
      commit: { xid: event.xid, commitLsn: event.commitLsn, committedAt: event.committedAt },
    };
    await dispatcher.dispatch({ events: [], parked: [parked], checkpoint: null });
    // After a restart the same transaction comes back, and with the cause fixed its row is recorded.
    expect(await dispatcher.dispatch({ events: [event], parked: [], checkpoint: null })).toMatchObject({ recorded: 1 });
    const letter = await db.selectFrom('walflow.dead_letters').select('id').where('tenant_id', '=', 'recorded-after-all').executeTakeFirstOrThrow();

    await expect(retryDeadLetter(db, letter.id)).rejects.toMatchObject({ code: 'already_recorded', message: expect.stringMatching(/recorded as event .* retrying would record it twice: discard the letter/) });

    expect(await db.selectFrom('walflow.outbox').select('id').where('id', '=', event.id).execute()).toEqual([]);
    expect(await db.selectFrom('walflow.dead_letters').select('resolved_at').where('id', '=', letter.id).executeTakeFirstOrThrow()).toEqual({ resolved_at: null });
    await discardDeadLetter(db, letter.id);
  });
});
