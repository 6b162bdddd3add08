import { formatLsn, isWalflowError, type BatchDispatcher, type DispatchBatch, type Lsn, type WalflowDatabase } from '@walflow/core';
import { Dispatcher, PoisonIsolatingDispatcher } from '@walflow/executor';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keptWarnings, openMigrated, silentLogger as logger, testConsumer } from '../../server/test/fixtures.js';

const TRANSACTIONS = 30;
const PER_TRANSACTION = 10;
/**
 * At most five whole transactions per batch. A batch holds what had been read when it was dispatched, so on a
 * busy machine it may hold fewer; transactions are never split at this size, so every batch carries a checkpoint.
 */
const BATCH_ROWS = 50;

const database = useTestDatabase({ prefix: 'walflow_pipeline' });
let db: Kysely<WalflowDatabase>;

beforeAll(async () => {
  db = await openMigrated(database);
});
afterAll(async () => {
  await db.destroy();
});

async function confirmedFlushAtLeast(lsn: string): Promise<boolean> {
  const { rows } = await sql<{ past: boolean }>`
    SELECT confirmed_flush_lsn >= ${lsn}::pg_lsn AS past FROM pg_replication_slots WHERE slot_name = ${database.slotName}`.execute(db);
  return rows[0]?.past === true;
}

async function confirmedFlush(): Promise<string> {
  const { rows } = await sql<{ lsn: string }>`
    SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = ${database.slotName}`.execute(db);
  return rows[0]!.lsn;
}

/** A trigger that refuses to record any event whose payload has the key `poison`. */
async function refusePoison(): Promise<void> {
  await sql`CREATE OR REPLACE FUNCTION public.refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.payload ? 'poison' THEN RAISE EXCEPTION 'poison: % can never be recorded', NEW.id; END IF;
      RETURN NEW;
    END $$`.execute(db);
  await sql`CREATE OR REPLACE TRIGGER refuse_poison BEFORE INSERT ON walflow.events FOR EACH ROW EXECUTE FUNCTION public.refuse_poison()`.execute(db);
}

/** The dispatcher `walflow start` uses, keeping every attempt that ended because the batch before had failed. */
function poisonIsolatingAndWatched(): { dispatcher: BatchDispatcher; waitedForTheBatchBefore: unknown[] } {
  const poisonIsolating = new PoisonIsolatingDispatcher(new Dispatcher({ db, slotName: database.slotName, logger }), logger);
  const waitedForTheBatchBefore: unknown[] = [];
  const dispatcher: BatchDispatcher = {
    async dispatch(batch) {
      try {
        return await poisonIsolating.dispatch(batch);
      } catch (error) {
        if (isWalflowError(error, 'previous_batch_failed')) waitedForTheBatchBefore.push(error);
        throw error;
      }
    },
  };
  return { dispatcher, waitedForTheBatchBefore };
}

async function recordedOfType(type: string, expected: number): Promise<boolean> {
  const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM walflow.events WHERE event_type = ${type}`.execute(db);
  return Number(rows[0]!.n) === expected;
}

describe('the next batches are read and recorded while the one before commits', () => {
  it('acknowledges only committed batches, in order: a failed second batch fails the third and is redelivered exactly, nothing lost', async () => {
    for (let tx = 0; tx < TRANSACTIONS; tx++) {
      await sql`
        INSERT INTO walflow.outbox (event_type, aggregate_type, aggregate_id, payload)
        SELECT 'order.placed', 'order', 'o' || n, jsonb_build_object('n', n)
          FROM generate_series(${tx * PER_TRANSACTION}::int, ${tx * PER_TRANSACTION + PER_TRANSACTION - 1}::int) AS n`.execute(db);
    }
    const real = new Dispatcher({ db, slotName: database.slotName, logger });
    const streamOrder = (
      await sql<{ id: string }>`SELECT id FROM walflow.outbox ORDER BY (payload->>'n')::int`.execute(db)
    ).rows.map((row) => row.id);

    let calls = 0;
    let firstCheckpoint: Lsn | null = null;
    let firstBatchEvents = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    let failedBatch: DispatchBatch | null = null;
    let confirmedWhenFailing = '';
    const recordedAfterFailure: DispatchBatch[] = [];
    const failedAfterFailure: unknown[] = [];
    let duplicates = 0;
    const failingSecond: BatchDispatcher = {
      async dispatch(batch) {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          const call = ++calls;
          if (call === 2) {
            failedBatch = batch;
            // The first batch is acknowledged while this one is in flight; meanwhile the session reads on.
            await waitFor('the first batch to be acknowledged', () => confirmedFlushAtLeast(formatLsn(firstCheckpoint!)));
            await new Promise((resolve) => setTimeout(resolve, 500));
            confirmedWhenFailing = await confirmedFlush();
            throw new Error('simulated failure of the second batch, before its transaction commits');
          }
          let result;
          try {
            result = await real.dispatch(batch);
          } catch (error) {
            failedAfterFailure.push(error);
            throw error;
          }
          if (call > 2) recordedAfterFailure.push(batch);
          duplicates += result.duplicates;
          if (call === 1) {
            firstCheckpoint = batch.checkpoint!.endLsn;
            firstBatchEvents = batch.events.length;
          }
          return result;
        } finally {
          inFlight--;
        }
      },
    };

    const consumer = testConsumer(database, db, failingSecond, { maxBatchRows: BATCH_ROWS });
    consumer.start();
    try {
      await waitFor('the backlog to be recorded after the failure', async () => {
        const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM walflow.events`.execute(db);
        return Number(rows[0]!.n) === TRANSACTIONS * PER_TRANSACTION;
      });
    } finally {
      await consumer.stop();
    }

    const failed = failedBatch as DispatchBatch | null;
    expect(failed?.events.length).toBeGreaterThan(0);
    // While the second batch was being recorded the slot stood exactly after the first: not one transaction further.
    expect(confirmedWhenFailing).toBe(formatLsn(firstCheckpoint!));
    // The third batch was being recorded beside the second, and failed with it: it waits for the second's commit.
    expect(maxInFlight).toBe(2);
    expect(failedAfterFailure.length).toBeGreaterThan(0);
    expect(failedAfterFailure.every((error) => isWalflowError(error, 'previous_batch_failed'))).toBe(true);
    // The new session starts with exactly the batch that failed, and everything after it follows in stream order.
    const redelivered = recordedAfterFailure.flatMap((batch) => batch.events.map((event) => event.id));
    expect(redelivered.slice(0, failed!.events.length)).toEqual(failed!.events.map((event) => event.id));
    expect(redelivered).toEqual(streamOrder.slice(firstBatchEvents));
    expect(duplicates).toBe(0);
    const outbox = await sql<{ n: string }>`SELECT count(*) AS n FROM walflow.outbox`.execute(db);
    expect(Number(outbox.rows[0]!.n)).toBe(0);
  });

  it('a full batch of empty transactions is acknowledged only after the batch before it commits', async () => {
    await sql`CREATE TABLE public.noise (id serial PRIMARY KEY)`.execute(db);
    await sql`INSERT INTO walflow.outbox (event_type, payload) VALUES ('order.paid', '{"n": 1}')`.execute(db);
    // Transactions without outbox rows: the plugin sends only their begin and commit.
    for (let n = 0; n < 12; n++) await sql`INSERT INTO public.noise DEFAULT VALUES`.execute(db);
    const { rows } = await sql<{ lsn: string }>`SELECT pg_current_wal_insert_lsn()::text AS lsn`.execute(db);
    const afterNoise = rows[0]!.lsn;
    const real = new Dispatcher({ db, slotName: database.slotName, logger });
    let slowBatchEnd: string | null = null;
    let passedWhileSlow = false;
    const slowFirst: BatchDispatcher = {
      async dispatch(batch) {
        if (slowBatchEnd === null && batch.events.length > 0) {
          slowBatchEnd = formatLsn(batch.checkpoint!.endLsn);
          // Meanwhile the empty transactions behind it fill batches of their own.
          const until = Date.now() + 1_500;
          while (Date.now() < until) {
            passedWhileSlow ||= await confirmedFlushAtLeast(formatLsn((batch.checkpoint!.endLsn + 1n) as Lsn));
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        }
        return real.dispatch(batch);
      },
    };
    const consumer = testConsumer(database, db, slowFirst, { maxBatchRows: 4 });
    consumer.start();
    try {
      await waitFor('the empty transactions to be acknowledged', () => confirmedFlushAtLeast(afterNoise));
    } finally {
      await consumer.stop();
    }
    expect(slowBatchEnd).not.toBeNull();
    expect(passedWhileSlow).toBe(false);
  });

  it('a bad event in a backlog is parked while the next batch waits for it, and the session goes on', async () => {
    await refusePoison();
    for (let tx = 0; tx < TRANSACTIONS; tx++) {
      await sql`
        INSERT INTO walflow.outbox (event_type, aggregate_type, aggregate_id, payload)
        SELECT 'order.shipped', 'order', 'o' || n, CASE WHEN n = 125 THEN jsonb_build_object('n', n, 'poison', true) ELSE jsonb_build_object('n', n) END
          FROM generate_series(${tx * PER_TRANSACTION}::int, ${tx * PER_TRANSACTION + PER_TRANSACTION - 1}::int) AS n`.execute(db);
    }
    const { dispatcher, waitedForTheBatchBefore } = poisonIsolatingAndWatched();
    const { logger: watched, warnings } = keptWarnings();
    const consumer = testConsumer(database, db, dispatcher, { logger: watched, maxBatchRows: BATCH_ROWS });
    consumer.start();
    try {
      await waitFor('the backlog to be recorded around the bad event', () => recordedOfType('order.shipped', TRANSACTIONS * PER_TRANSACTION - 1));
    } finally {
      await consumer.stop();
    }
    // The batch after the bad one, if it started beside it before its first attempt failed, waited instead of
    // ending the session; one that started later waited without an attempt, and the batches after those
    // followed the new attempt, so none of them had to wait so.
    expect(waitedForTheBatchBefore.length).toBeLessThanOrEqual(1);
    expect(warnings).not.toContain('replication session failed');
    const letters = await sql<{ code: string }>`SELECT code FROM walflow.dead_letters WHERE event_type = 'order.shipped'`.execute(db);
    expect(letters.rows).toEqual([{ code: 'dispatch_failed' }]);
  });

  it('a batch that starts after the one before was recorded around a bad event makes no attempt that must fail', async () => {
    await refusePoison();
    await sql`
      INSERT INTO walflow.outbox (event_type, payload)
      SELECT 'order.returned', CASE WHEN n = 3 THEN jsonb_build_object('n', n, 'poison', true) ELSE jsonb_build_object('n', n) END
        FROM generate_series(1, ${PER_TRANSACTION}) AS n`.execute(db);
    const { dispatcher, waitedForTheBatchBefore } = poisonIsolatingAndWatched();
    const consumer = testConsumer(database, db, dispatcher, { maxBatchRows: BATCH_ROWS });
    consumer.start();
    try {
      await waitFor('the bad event to be parked', () => recordedOfType('order.returned', PER_TRANSACTION - 1));
      // The first attempt at that batch failed, so its progress did; the next batch follows the batch's retry.
      await sql`INSERT INTO walflow.outbox (event_type, payload) SELECT 'order.returned', jsonb_build_object('n', n) FROM generate_series(1, ${PER_TRANSACTION}) AS n`.execute(db);
      await waitFor('the next transaction to be recorded', () => recordedOfType('order.returned', 2 * PER_TRANSACTION - 1));
    } finally {
      await consumer.stop();
    }
    expect(waitedForTheBatchBefore).toHaveLength(0);
  });

  it('fails a batch that waited for the one before when that one fails after all, so the batch beside it does not wait for ever', async () => {
    for (let tx = 0; tx < TRANSACTIONS; tx++) {
      await sql`INSERT INTO walflow.outbox (event_type, payload) SELECT 'order.billed', jsonb_build_object('n', n) FROM generate_series(1, ${PER_TRANSACTION}) AS n`.execute(db);
    }
    const real = new Dispatcher({ db, slotName: database.slotName, logger });
    let calls = 0;
    let startedBeside!: () => void;
    const besideStarted = new Promise<void>((resolve) => (startedBeside = resolve));
    const failingLate: BatchDispatcher = {
      async dispatch(batch) {
        const call = ++calls;
        if (call === 1) {
          // Its first attempt fails, as a bad event's does; the next batch then waits for its retry without an
          // attempt of its own, and the one after starts beside that one. Then the retry fails too.
          batch.progress!.markFailed(new Error('the first attempt failed'));
          await besideStarted;
          throw new Error('the retry failed as well');
        }
        if (call === 2) startedBeside();
        return real.dispatch(batch);
      },
    };
    const consumer = testConsumer(database, db, failingLate, { maxBatchRows: BATCH_ROWS, batchesInFlight: 3 });
    consumer.start();
    try {
      await waitFor('the backlog to be recorded by the next session', () => recordedOfType('order.billed', TRANSACTIONS * PER_TRANSACTION), { timeoutMs: 15_000 });
    } finally {
      await consumer.stop();
    }
    expect(calls).toBeGreaterThan(2);
  });
});
