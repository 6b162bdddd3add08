import type { ReplicationConsumer } from '@walflow/cdc';
import type { BatchDispatcher, DispatchBatch, DispatchResult, WalflowDatabase } from '@walflow/core';
import { Dispatcher } from '@walflow/executor';
import { emit } from '@walflow/outbox';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, countsFor, openMigrated, silentLogger, testConsumer } from './fixtures.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;

beforeAll(async () => {
  db = await openMigrated(database);
});
afterAll(async () => {
  await db.destroy();
});

function consumerWith(dispatcher: BatchDispatcher, onBatch?: (result: DispatchResult) => void): ReplicationConsumer {
  return testConsumer(database, db, dispatcher, { onBatch });
}

async function slotConfirmedPast(commitLsnOfTenant: string): Promise<boolean> {
  const { rows } = await sql<{ past: boolean }>`
    SELECT r.confirmed_flush_lsn > (SELECT max(commit_lsn) FROM walflow.events WHERE tenant_id = ${commitLsnOfTenant}) AS past
      FROM pg_replication_slots r WHERE r.slot_name = ${database.slotName}`.execute(db);
  return rows[0]?.past === true;
}

describe('acknowledgement', () => {
  it('redelivers after a crash between the dispatch commit and the acknowledgement, and records nothing twice', async () => {
    const tenant = 'crash-before-ack';
    await applyTestWorkflow(db, { tenant, name: 'w', trigger: { event: 'policy.approved' }, actions: [{ type: 'emit_event', event: 'policy.noted' }] });
    // A backlog of 12 transactions of 5 events, committed before the consumer starts.
    for (let tx = 0; tx < 12; tx++) {
      await db.transaction().execute(async (trx) => {
        for (let n = 0; n < 5; n++) await emit(trx, { type: 'policy.approved', tenantId: tenant, payload: { tx, n } });
      });
    }
    const real = new Dispatcher({ db, slotName: database.slotName, logger: silentLogger });
    let crashes = 0;
    let duplicates = 0;
    const crashingOnce: BatchDispatcher = {
      async dispatch(batch: DispatchBatch) {
        const result = await real.dispatch(batch);
        if (crashes++ === 0) throw new Error('simulated crash after commit, before acknowledgement');
        return result;
      },
    };
    const consumer = consumerWith(crashingOnce, (result) => (duplicates += result.duplicates));
    consumer.start();
    try {
      await waitFor('the backlog to be recorded after the crash', async () => duplicates > 0 && (await countsFor(db, tenant)).events === 60);
      await waitFor('the slot to move past the backlog', () => slotConfirmedPast(tenant));
    } finally {
      await consumer.stop();
    }
    expect(crashes).toBeGreaterThan(1);
    expect(await countsFor(db, tenant)).toMatchObject({ events: 60, decisions: 60, runs: 60, outbox: 0 });
  });

  it('never confirms a transaction whose effects are not committed, keepalives included', async () => {
    const tenant = 'in-flight';
    const real = new Dispatcher({ db, slotName: database.slotName, logger: silentLogger });
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let dispatched = 0;
    const blocking: BatchDispatcher = {
      async dispatch(batch) {
        const result = await real.dispatch(batch);
        dispatched++;
        await released;
        return result;
      },
    };
    const consumer = consumerWith(blocking);
    consumer.start();
    try {
      await waitFor('the consumer to stream', () => consumer.status.state === 'streaming');
      await emit(db, { type: 'policy.approved', tenantId: tenant, payload: {} });
      await waitFor('the event to be recorded', () => dispatched === 1);
      // More WAL after it (other tables), and time for the server's keepalives to arrive.
      await sql`CREATE TABLE IF NOT EXISTS public.noise (n int)`.execute(db);
      for (let n = 0; n < 20; n++) await sql`INSERT INTO public.noise VALUES (${n})`.execute(db);
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(await slotConfirmedPast(tenant)).toBe(false);
      release();
      await waitFor('the slot to move once the effects are committed', () => slotConfirmedPast(tenant));
    } finally {
      release();
      await consumer.stop();
    }
  });

  it('ends a failed session only once the batch recorded beside the failed one has finished, so no new session records alongside it', async () => {
    const tenant = 'fail-beside';
    for (let tx = 0; tx < 4; tx++) {
      await db.transaction().execute(async (trx) => {
        for (let n = 0; n < 5; n++) await emit(trx, { type: 'policy.approved', tenantId: tenant, payload: { tx, n } });
      });
    }
    const real = new Dispatcher({ db, slotName: database.slotName, logger: silentLogger });
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    let callsWhileHeld = 0;
    let holding = false;
    // The second batch, recorded beside the first, is held until the test lets it go.
    const holdingSecond: BatchDispatcher = {
      async dispatch(batch) {
        const call = ++calls;
        if (holding) callsWhileHeld++;
        if (call === 2) {
          holding = true;
          await released;
          holding = false;
        }
        return real.dispatch(batch);
      },
    };
    let batches = 0;
    // The first batch's effects commit, then telling of them fails: the session fails.
    const consumer = testConsumer(database, db, holdingSecond, {
      maxBatchRows: 5,
      onBatch: () => {
        if (++batches === 1) throw new Error('simulated failure after the first batch committed');
      },
    });
    consumer.start();
    try {
      await waitFor('the first batch to fail while the second is held', () => batches >= 1 && holding);
      // A session that ended at once would reconnect within 100 ms and record the stream again beside the held batch.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(callsWhileHeld).toBe(0);
      release();
      await waitFor('the backlog to be recorded', async () => (await countsFor(db, tenant)).events === 20);
    } finally {
      release();
      await consumer.stop();
    }
    expect(await countsFor(db, tenant)).toMatchObject({ events: 20, outbox: 0 });
  });

  it('acknowledges empty transactions and keepalives when idle, so the slot does not hold WAL', async () => {
    const consumer = consumerWith(new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }));
    consumer.start();
    try {
      await waitFor('the consumer to stream', () => consumer.status.state === 'streaming');
      for (let n = 0; n < 20; n++) await sql`INSERT INTO public.noise VALUES (${n})`.execute(db);
      const { rows } = await sql<{ lsn: string }>`SELECT pg_current_wal_insert_lsn()::text AS lsn`.execute(db);
      await waitFor('the slot to catch up with the WAL', async () => {
        const result = await sql<{ caught: boolean }>`
          SELECT confirmed_flush_lsn >= ${rows[0]!.lsn}::pg_lsn AS caught FROM pg_replication_slots WHERE slot_name = ${database.slotName}`.execute(db);
        return result.rows[0]?.caught === true;
      });
    } finally {
      await consumer.stop();
    }
  });
});
