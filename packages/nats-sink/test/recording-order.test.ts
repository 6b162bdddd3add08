import type { WalflowDatabase } from '@walflow/core';
import type { Dispatcher } from '@walflow/executor';
import { useTestDatabase } from '@walflow/testing';
import { sql, type Kysely, type Transaction } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalEvent, openDispatcher } from '../../server/test/fixtures.js';
import { registerCursor } from '../src/sink-cursor.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
let dispatcher: Dispatcher;

beforeAll(async () => {
  ({ db, dispatcher } = await openDispatcher(database, [
    { tenant: 'order', name: 'on-approval', trigger: { event: 'policy.approved' }, actions: [{ type: 'emit_event', event: 'x.y' }] },
  ]));
});
afterAll(() => db.destroy());

/** A transaction left open until commit() is called. */
async function openTransaction(): Promise<{ trx: Transaction<WalflowDatabase>; commit(): Promise<void> }> {
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  let opened!: (trx: Transaction<WalflowDatabase>) => void;
  const trx = new Promise<Transaction<WalflowDatabase>>((resolve) => (opened = resolve));
  const done = db.transaction().execute(async (inner) => {
    opened(inner);
    await finished;
  });
  return {
    trx: await trx,
    async commit() {
      finish();
      await done;
    },
  };
}

/** Whether the promise is still pending after `ms`. */
async function stillPending(promise: Promise<unknown>, ms = 300): Promise<boolean> {
  const pending = Symbol('pending');
  const outcome = await Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve(pending), ms))]);
  return outcome === pending;
}

async function recordedXids(ids: string[]): Promise<Array<string | null>> {
  const { rows } = await sql<{ recorded_xid: string | null }>`
    SELECT recorded_xid::text AS recorded_xid FROM walflow.events WHERE id = ANY(${ids}::uuid[]) ORDER BY tx_position, id`.execute(db);
  return rows.map((row) => row.recorded_xid);
}

describe('an event\'s place in recording order (recorded_xid)', () => {
  it('is given only once a sink has a cursor, and then to every event of a batch, by the recording transaction', async () => {
    const before = [approvalEvent('order', 1), approvalEvent('order', 2)];
    await dispatcher.dispatch({ events: before, parked: [], checkpoint: null });
    expect(await recordedXids(before.map((event) => event.id))).toEqual([null, null]);
    const index = await sql<{ entries: string }>`
      SELECT count(*) AS entries FROM walflow.events WHERE recorded_xid IS NOT NULL`.execute(db);
    expect(Number(index.rows[0]!.entries)).toBe(0);

    await db.transaction().execute((trx) => registerCursor(trx, 'first-sink'));
    const after = [approvalEvent('order', 3), approvalEvent('order', 4)];
    await dispatcher.dispatch({ events: after, parked: [], checkpoint: null });
    const xids = await recordedXids(after.map((event) => event.id));
    expect(xids[0]).not.toBeNull();
    expect(xids[1]).toBe(xids[0]);
  });

  it('registers a sink between recording transactions: it waits for one in flight, and one that starts meanwhile sees it', async () => {
    await sql`DELETE FROM walflow.sink_cursors`.execute(db);
    // A recording transaction that decided, without a cursor, to give its events no place in recording order.
    const recording = await openTransaction();
    expect((await sql<{ xid: string | null }>`SELECT walflow.recording_xid()::text AS xid`.execute(recording.trx)).rows[0]!.xid).toBeNull();

    const registration = await openTransaction();
    const registered = registerCursor(registration.trx, 'late-sink');
    expect(await stillPending(registered)).toBe(true);
    await recording.commit();
    await registered;

    // Until the registration commits, a batch waits; then it sees the cursor, though its statement began before.
    const event = approvalEvent('order', 5);
    const dispatched = dispatcher.dispatch({ events: [event], parked: [], checkpoint: null });
    expect(await stillPending(dispatched)).toBe(true);
    await registration.commit();
    await dispatched;
    expect((await recordedXids([event.id]))[0]).not.toBeNull();
  });
});
