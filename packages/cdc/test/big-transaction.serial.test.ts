import { ReplicationConsumer } from '@walflow/cdc';
import type { BatchDispatcher, DispatchBatch, WalflowDatabase } from '@walflow/core';
import { Dispatcher } from '@walflow/executor';
import { createDatabase, migrate } from '@walflow/server';
import { createTestDatabase, startPostgres, waitFor, type CreatedTestDatabase, type StartedPostgres } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const logger = pino({ level: 'silent' });
const ROWS = 200_000;
const SLICE = 2_000;
const BATCH = 5_000;
let cluster: StartedPostgres;
let database: CreatedTestDatabase;
let db: Kysely<WalflowDatabase>;

beforeAll(async () => {
  cluster = await startPostgres({ dedicated: true });
  database = await createTestDatabase(cluster.url);
  db = createDatabase(database.url, logger);
  await migrate({ db, slotName: 'walflow_big', logger });
});
afterAll(async () => {
  await db?.destroy();
  await database?.drop();
  await cluster?.stop();
});

async function slotConfirmedLsnPast(lsn: string): Promise<boolean> {
  const { rows } = await sql<{ past: boolean }>`
    SELECT confirmed_flush_lsn >= ${lsn}::pg_lsn AS past FROM pg_replication_slots WHERE slot_name = 'walflow_big'`.execute(db);
  return rows[0]?.past === true;
}

describe('a transaction of 200,000 outbox rows', () => {
  it('is recorded completely, in bounded slices, and acknowledged only at its commit', async () => {
    const { rows } = await sql<{ n: string }>`
      WITH w AS (
        INSERT INTO walflow.outbox (event_type, aggregate_type, aggregate_id, payload)
        SELECT 'commission.earned', 'agent', 'a' || (n % 100), jsonb_build_object('n', n, 'amount', n * 1.5)
          FROM generate_series(1, ${ROWS}) AS n
        RETURNING 1)
      SELECT count(*) AS n FROM w`.execute(db);
    expect(Number(rows[0]?.n)).toBe(ROWS);
    const afterCommit = (await sql<{ lsn: string }>`SELECT pg_current_wal_insert_lsn()::text AS lsn`.execute(db)).rows[0]!.lsn;

    const real = new Dispatcher({ db, slotName: 'walflow_big', logger });
    const batches: { events: number; checkpoint: boolean; slotPastCommit: boolean }[] = [];
    const recording: BatchDispatcher = {
      async dispatch(batch: DispatchBatch) {
        // While slices of the open transaction are recorded, the slot must stay before its commit.
        batches.push({ events: batch.events.length, checkpoint: batch.checkpoint !== null, slotPastCommit: await slotConfirmedLsnPast(afterCommit) });
        return real.dispatch(batch);
      },
    };
    const consumer = new ReplicationConsumer({
      connection: { connectionString: database.url },
      slotName: 'walflow_big',
      dispatcher: recording,
      db,
      logger,
      sliceSize: SLICE,
      maxBatchRows: BATCH,
    });
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 100);
    const started = Date.now();
    consumer.start();
    try {
      await waitFor('the slot to be acknowledged past the commit', () => slotConfirmedLsnPast(afterCommit), { timeoutMs: 240_000, intervalMs: 250 });
    } finally {
      clearInterval(sampler);
      await consumer.stop();
    }
    const seconds = (Date.now() - started) / 1000;
    // Printed, not asserted: absolute figures are noise on a shared machine; the bounds below are structural.
    console.info(
      `${ROWS}-row transaction: ${batches.length} batches in ${seconds.toFixed(1)} s (${Math.round(ROWS / seconds)} rows/s), ` +
        `RSS ${Math.round(rssBefore / 2 ** 20)} → peak ${Math.round(rssPeak / 2 ** 20)} MiB`,
    );

    expect(batches.reduce((sum, batch) => sum + batch.events, 0)).toBe(ROWS);
    expect(batches.length).toBeGreaterThan(ROWS / (BATCH + SLICE));
    expect(Math.max(...batches.map((batch) => batch.events))).toBeLessThanOrEqual(BATCH + SLICE);
    expect(batches.some((batch) => batch.slotPastCommit)).toBe(false);
    // Only a batch holding the commit may carry the checkpoint (the commit's slice may also be empty and need no write).
    expect(batches.slice(0, -1).some((batch) => batch.checkpoint)).toBe(false);
    const counts = await sql<{ events: string; outbox: string }>`
      SELECT (SELECT count(*) FROM walflow.events) AS events, (SELECT count(*) FROM walflow.outbox) AS outbox`.execute(db);
    expect(counts.rows[0]).toEqual({ events: String(ROWS), outbox: '0' });
  });
});
