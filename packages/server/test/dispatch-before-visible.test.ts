import { parseLsn, type EventEnvelope, type TransactionEnd, type WalflowDatabase } from '@walflow/core';
import { COPY_FROM_ROWS, Dispatcher, setWorkflowStatus } from '@walflow/executor';
import { createDatabase } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, approvalEvent, countCopies, forgetLoads, noteLoads, openDispatcher, silentLogger } from './fixtures.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
let dispatcher: Dispatcher;

beforeAll(async () => {
  ({ db, dispatcher } = await openDispatcher(database, [
    { tenant: 'unpublished', name: 'on-approval', trigger: { event: 'policy.approved' }, actions: [{ type: 'emit_event', event: 'x.y' }] },
  ]));
  await noteLoads(db);
});
afterAll(() => db.destroy());

describe('an outbox row decoded before its transaction is visible to other sessions', () => {
  // The walsender sends a commit once its WAL is flushed; the committing backend leaves the list of running
  // transactions after that. A transaction held open stands in for that gap, which is too short to hit at will.
  it('is deleted with its recording: the dispatch waits until its writer is visible, and the outbox ends empty', async () => {
    await expectWaitForWriter(dispatcher, [approvalEvent('unpublished', 1)]);
  });

  it('is waited for the same when the database defaults to REPEATABLE READ, whose one snapshot would never see it', async () => {
    await sql`ALTER DATABASE ${sql.id(database.name)} SET default_transaction_isolation = 'repeatable read'`.execute(db);
    const repeatable = createDatabase(database.url, silentLogger);
    try {
      await expectWaitForWriter(new Dispatcher({ db: repeatable, slotName: database.slotName, logger: silentLogger }), [approvalEvent('unpublished', 2)]);
    } finally {
      await repeatable.destroy();
      await sql`ALTER DATABASE ${sql.id(database.name)} RESET default_transaction_isolation`.execute(db);
    }
  });
});

describe('a whole transaction of outbox rows decoded before its writer is visible, loaded with COPY', () => {
  it('is waited for as a single row is, and leaves the outbox empty', async () => {
    await forgetLoads(db);
    // One transaction, ending at `end`, beyond the slot's checkpoint: a batch that may go in by COPY.
    const end = parseLsn('0/9000000');
    const written = Array.from({ length: COPY_FROM_ROWS }, (_, n) => ({ ...approvalEvent('unpublished', 100 + n), commitLsn: end, position: n }));
    await expectWaitForWriter(dispatcher, written, { commitLsn: end, endLsn: parseLsn('0/9000010'), committedAt: written[0]!.committedAt });
    expect(await countCopies(db, 'events')).toBe(1);
  });
});

describe('an event decoded before its writer is visible, whose workflow was paused just before that writer committed', () => {
  it('is decided inactive: the workflows are read again once the writer is visible', async () => {
    await applyTestWorkflow(db, { tenant: 'paused-before', name: 'on-approval', trigger: { event: 'policy.approved' }, actions: [{ type: 'emit_event', event: 'x.y' }] });
    const { writer, events: [event] } = await openWriter([approvalEvent('paused-before', 1)]);
    try {
      const dispatched = dispatcher.dispatch({ events: [event!], parked: [], checkpoint: null });
      // Once the dispatch looks for its writer (before it decides, or, as it did, after), the pause commits, then
      // the writer: its event comes after the pause.
      await waitForWriterWait();
      expect(await setWorkflowStatus(db, 'paused-before', 'on-approval', 'paused')).toBe('changed');
      await writer.query('COMMIT');
      expect(await dispatched).toMatchObject({ recorded: 1, runsQueued: 0 });
      const decision = await db.selectFrom('walflow.decisions').select('outcome').where('event_id', '=', event!.id).executeTakeFirstOrThrow();
      expect(decision.outcome).toBe('inactive');
    } finally {
      await writer.end();
    }
  });
});

/**
 * A writer's transaction, open, that has written the events' outbox rows; the events as decoded from it (their
 * xid the writer's). End the writer when done.
 */
async function openWriter(events: EventEnvelope[]): Promise<{ writer: pg.Client; events: EventEnvelope[] }> {
  const writer = new pg.Client({ connectionString: database.url });
  await writer.connect();
  await writer.query('BEGIN');
  for (const event of events) {
    await writer.query(
      `INSERT INTO walflow.outbox (id, tenant_id, event_type, aggregate_type, aggregate_id, payload) VALUES ($1, $2, $3, $4, $5, $6)`,
      [event.id, event.tenantId, event.type, event.aggregateType, event.aggregateId, JSON.stringify(event.payload)],
    );
  }
  const { rows } = await writer.query<{ xid: string }>('SELECT pg_current_xact_id()::xid::text AS xid');
  return { writer, events: events.map((event) => ({ ...event, xid: rows[0]!.xid })) };
}

/**
 * Holds a writer's transaction open across a dispatch of its events, commits it, and checks their outbox rows
 * went. With `checkpoint`, the events are one whole transaction that ends there.
 */
async function expectWaitForWriter(through: Dispatcher, written: EventEnvelope[], checkpoint: TransactionEnd | null = null): Promise<void> {
  const { writer, events } = await openWriter(written);
  try {
    let settled = false;
    const dispatched = through.dispatch({ events, parked: [], checkpoint }).finally(() => (settled = true));
    await waitForWriterWait();
    expect(settled).toBe(false);
    await writer.query('COMMIT');

    expect(await dispatched).toMatchObject({ recorded: events.length, runsQueued: events.length });
    const left = await sql<{ n: number }>`SELECT count(*)::int AS n FROM walflow.outbox WHERE id = ANY(${events.map((event) => event.id)}::uuid[])`.execute(db);
    expect(left.rows[0]!.n).toBe(0);
  } finally {
    await writer.end();
  }
}

/** Until the dispatch looks for its outbox rows' writers, which it does until they are visible. */
async function waitForWriterWait(): Promise<void> {
  await waitFor('the dispatch to wait for its writer', async () => {
    const { rows: waiting } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND query LIKE 'SELECT (SELECT count(*)::int FROM unnest%'`.execute(db);
    return waiting[0]!.n > 0;
  });
}
