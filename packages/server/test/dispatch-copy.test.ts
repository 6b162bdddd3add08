import { Writable } from 'node:stream';
import type { EventEnvelope, TransactionEnd, WalflowDatabase } from '@walflow/core';
import { COPY_FROM_ROWS, Dispatcher } from '@walflow/executor';
import { useTestDatabase } from '@walflow/testing';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { applyTestWorkflow, approvalEvent, countCopies, forgetLoads, noteLoads, openMigrated } from './fixtures.js';

/**
 * The dispatcher loads the new events and runs of a large batch with COPY, in its text format, and events that
 * may have been recorded before with INSERT … ON CONFLICT: those at or below the slot's checkpoint (a
 * redelivery after a restart) and any whose COPY met a duplicate.
 */
const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
let workflowId: string;

beforeAll(async () => {
  db = await openMigrated(database);
  await noteLoads(db);
  for (const tenant of ['copy', 'redelivered', 'beyond', 'slice', 'tail', 'small', 'unwrapped']) {
    const id = await applyTestWorkflow(db, { tenant, name: 'on-approval', trigger: { event: 'policy.approved' }, actions: [{ type: 'emit_event', event: 'x.y' }] });
    if (tenant === 'copy') workflowId = id;
  }
});
afterAll(() => db.destroy());
beforeEach(() => forgetLoads(db));

const copiesInto = (table: 'events' | 'workflow_runs'): Promise<number> => countCopies(db, table);

/** A dispatcher whose warnings are kept: a fresh one stands for walflow after a restart. */
function dispatcherKeepingWarnings(): { dispatcher: Dispatcher; warnings: string[] } {
  const warnings: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      warnings.push((JSON.parse(chunk.toString()) as { msg: string }).msg);
      done();
    },
  });
  return { dispatcher: new Dispatcher({ db, slotName: database.slotName, logger: pino({ level: 'warn' }, sink) }), warnings };
}

/** Events `from` … of a tenant, as many as a batch needs to go in by COPY unless told otherwise. */
function approvals(tenant: string, from: number, count = COPY_FROM_ROWS): EventEnvelope[] {
  return Array.from({ length: count }, (_, index) => approvalEvent(tenant, from + index));
}

function endOf(event: EventEnvelope): TransactionEnd {
  return { commitLsn: event.commitLsn, endLsn: event.commitLsn, committedAt: event.committedAt };
}

async function setCheckpoint(lsn: string | null): Promise<void> {
  await sql`UPDATE walflow.consumer_state SET checkpoint_lsn = ${lsn}::pg_lsn WHERE slot_name = ${database.slotName}`.execute(db);
}

async function runsOf(tenant: string): Promise<string[]> {
  const runs = await db.selectFrom('walflow.workflow_runs').select('event_id').where('tenant_id', '=', tenant).orderBy('event_id').execute();
  return runs.map((run) => run.event_id);
}

describe('events and runs loaded with COPY', () => {
  it('keeps every character of text and JSON: tabs, newlines, backslashes, quotes, \\N, non-ASCII', async () => {
    await setCheckpoint(null);
    const awkward = 'tab\there, new\nline, cr\r, back\\slash, "quoted", \\N, \\., é ✓ 𝄞';
    const [first, ...others] = approvals('copy', 1);
    const event: EventEnvelope = {
      ...first!,
      aggregateId: awkward,
      payload: { text: awkward, nested: { list: [awkward, null, 1.5, true] }, empty: '' },
      metadata: { actorId: awkward },
    };
    const { dispatcher, warnings } = dispatcherKeepingWarnings();

    expect(await dispatcher.dispatch({ events: [event, ...others], parked: [], checkpoint: endOf(others.at(-1)!) })).toMatchObject({
      recorded: COPY_FROM_ROWS,
      runsQueued: COPY_FROM_ROWS,
    });

    const recorded = await db.selectFrom('walflow.events').select(['aggregate_id', 'payload', 'metadata']).where('id', '=', event.id).executeTakeFirstOrThrow();
    expect(recorded).toEqual({ aggregate_id: awkward, payload: event.payload, metadata: event.metadata });
    const run = await db
      .selectFrom('walflow.workflow_runs')
      .select(['workflow_id', 'aggregate_id', 'correlation_id', 'replay_id', 'ordered', 'decision_detail'])
      .where('event_id', '=', event.id)
      .executeTakeFirstOrThrow();
    expect(run).toEqual({ workflow_id: workflowId, aggregate_id: awkward, correlation_id: event.id, replay_id: null, ordered: true, decision_detail: {} });
    expect(warnings).toEqual([]);
    expect([await copiesInto('events'), await copiesInto('workflow_runs')]).toEqual([1, 1]);
  });

  it('inserts a redelivery at or below the checkpoint without trying COPY: nothing recorded twice, no retry', async () => {
    await setCheckpoint(null);
    const events = approvals('redelivered', 1_000);
    const checkpoint = endOf(events.at(-1)!);
    const first = dispatcherKeepingWarnings();
    expect(await first.dispatcher.dispatch({ events, parked: [], checkpoint })).toMatchObject({ recorded: COPY_FROM_ROWS, runsQueued: COPY_FROM_ROWS });

    const restarted = dispatcherKeepingWarnings();
    const again = await restarted.dispatcher.dispatch({ events, parked: [], checkpoint });

    expect(again).toMatchObject({ recorded: 0, duplicates: COPY_FROM_ROWS, runsQueued: 0 });
    expect(restarted.warnings).toEqual([]);
    expect(await copiesInto('events')).toBe(1);
    expect(await runsOf('redelivered')).toEqual(events.map((event) => event.id).sort());
  });

  it('records a batch again around events beyond the checkpoint that were recorded before (part of a large transaction)', async () => {
    await setCheckpoint(null);
    const recordedPart = approvals('beyond', 2_000);
    const { dispatcher } = dispatcherKeepingWarnings();
    // A slice of a transaction still open in the stream: no checkpoint moves. Redelivered, it comes with the
    // transaction's end, in a batch that moves the checkpoint once written.
    expect(await dispatcher.dispatch({ events: recordedPart, parked: [], checkpoint: null })).toMatchObject({ recorded: COPY_FROM_ROWS });

    const rest = approvalEvent('beyond', 3_000);
    const restarted = dispatcherKeepingWarnings();
    const again = await restarted.dispatcher.dispatch({ events: [...recordedPart, rest], parked: [], checkpoint: endOf(rest) });

    expect(again).toMatchObject({ recorded: 1, duplicates: COPY_FROM_ROWS, runsQueued: 1 });
    expect(restarted.warnings).toEqual(['part of the batch was recorded before; recording the batch again, keeping what exists']);
    expect(await runsOf('beyond')).toEqual([...recordedPart, rest].map((event) => event.id).sort());
    const { checkpoint_lsn: checkpoint } = await db
      .selectFrom('walflow.consumer_state')
      .select('checkpoint_lsn')
      .where('slot_name', '=', database.slotName)
      .executeTakeFirstOrThrow();
    expect(checkpoint).toBe('0/2BB8');
  });

  it('inserts a slice of a large transaction by INSERT: its checkpoint stays, so a refused COPY would be refused at every redelivery', async () => {
    await setCheckpoint(null);
    const slice = approvals('slice', 5_000);
    const { dispatcher } = dispatcherKeepingWarnings();
    expect(await dispatcher.dispatch({ events: slice, parked: [], checkpoint: null })).toMatchObject({ recorded: COPY_FROM_ROWS });

    const restarted = dispatcherKeepingWarnings();
    const again = await restarted.dispatcher.dispatch({ events: slice, parked: [], checkpoint: null });

    expect(again).toMatchObject({ recorded: 0, duplicates: COPY_FROM_ROWS, runsQueued: 0 });
    expect(restarted.warnings).toEqual([]);
  });

  it('inserts a batch that ends with the first slices of a transaction: redelivered with the rest, it is never refused', async () => {
    await setCheckpoint(null);
    // Transaction C whole, then the first slice of D, whose commit is further on in the stream.
    const c = approvals('tail', 6_000);
    const dFirstSlice = approvals('tail', 7_000, 10);
    const { dispatcher } = dispatcherKeepingWarnings();
    expect(await dispatcher.dispatch({ events: [...c, ...dFirstSlice], parked: [], checkpoint: endOf(c.at(-1)!) })).toMatchObject({
      recorded: COPY_FROM_ROWS + 10,
    });
    expect(await copiesInto('events')).toBe(0);

    // After a crash: D again, whole this time, and the first events of E.
    const dWhole = [...dFirstSlice, ...approvals('tail', 7_010, COPY_FROM_ROWS)].map((event) => ({ ...event, commitLsn: dFirstSlice[0]!.commitLsn }));
    const eFirst = approvals('tail', 8_000, 5);
    const restarted = dispatcherKeepingWarnings();
    const again = await restarted.dispatcher.dispatch({ events: [...dWhole, ...eFirst], parked: [], checkpoint: endOf(dWhole.at(-1)!) });

    expect(again).toMatchObject({ recorded: COPY_FROM_ROWS + 5, duplicates: 10 });
    expect(restarted.warnings).toEqual([]);
  });

  it('names a connection that cannot stream COPY rows: a Kysely not made by createDatabase', async () => {
    const plain = new Kysely<WalflowDatabase>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: database.url, max: 1 }) }) });
    try {
      const dispatcher = new Dispatcher({ db: plain, slotName: database.slotName, logger: pino({ level: 'silent' }) });
      const events = approvals('unwrapped', 9_000);
      await expect(dispatcher.dispatch({ events, parked: [], checkpoint: endOf(events.at(-1)!) })).rejects.toMatchObject({
        code: 'dispatch_failed',
        message: 'COPY into walflow.events needs a connection made by createDatabase (@walflow/server), which streams its rows',
      });
      expect(await runsOf('unwrapped')).toEqual([]);
    } finally {
      await plain.destroy();
    }
  });

  it('inserts a small batch in one statement, which takes events recorded before without a retry', async () => {
    await setCheckpoint(null);
    const events = approvals('small', 4_000, 2);
    const { dispatcher } = dispatcherKeepingWarnings();
    expect(await dispatcher.dispatch({ events, parked: [], checkpoint: null })).toMatchObject({ recorded: 2, runsQueued: 2 });

    const restarted = dispatcherKeepingWarnings();
    const again = await restarted.dispatcher.dispatch({ events: [...events, approvalEvent('small', 4_002)], parked: [], checkpoint: null });

    expect(again).toMatchObject({ recorded: 1, duplicates: 2, runsQueued: 1 });
    expect(restarted.warnings).toEqual([]);
  });
});
