import type { BatchDispatcher, WalflowDatabase } from '@walflow/core';
import { Dispatcher } from '@walflow/executor';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openMigrated, silentLogger, testConsumer } from '../../server/test/fixtures.js';

const ROW_TEXT = 200_000;
const ROWS = 24;
const BATCH_TEXT = 1_000_000;
const SLICE_TEXT = 500_000;

const database = useTestDatabase({ prefix: 'walflow_large' });
let db: Kysely<WalflowDatabase>;

beforeAll(async () => {
  db = await openMigrated(database);
});
afterAll(async () => {
  await db.destroy();
});

describe('a backlog of large payloads', () => {
  it('is read and recorded in batches bounded by their text, not only by their rows', async () => {
    const payload = sql`jsonb_build_object('n', n, 'text', repeat('x', ${ROW_TEXT}))`;
    // One transaction of them, then as many of one each.
    await sql`INSERT INTO walflow.outbox (event_type, aggregate_type, aggregate_id, payload)
              SELECT 'document.stored', 'document', 'd' || n, ${payload} FROM generate_series(1, ${ROWS}) AS n`.execute(db);
    await sql`
      DO $$ BEGIN
        FOR n IN 1..${sql.lit(ROWS)} LOOP
          INSERT INTO walflow.outbox (event_type, aggregate_type, aggregate_id, payload)
          VALUES ('document.stored', 'document', 'e' || n, jsonb_build_object('n', n, 'text', repeat('x', ${sql.lit(ROW_TEXT)})));
          COMMIT;
        END LOOP;
      END $$`.execute(db);

    const real = new Dispatcher({ db, slotName: database.slotName, logger: silentLogger });
    const batchTexts: number[] = [];
    const measuring: BatchDispatcher = {
      async dispatch(batch) {
        batchTexts.push(batch.events.reduce((sum, event) => sum + (event.payloadJson?.length ?? 0), 0));
        // The first batch takes a while, as a busy dispatch does: the rows after it pile up meanwhile, and only
        // the bound on a batch's text keeps the next batch from taking them all.
        if (batchTexts.length === 1) await new Promise((resolve) => setTimeout(resolve, 1000));
        return real.dispatch(batch);
      },
    };
    const consumer = testConsumer(database, db, measuring, { maxBatchTextLength: BATCH_TEXT, sliceTextLength: SLICE_TEXT, batchesInFlight: 1 });
    consumer.start();
    try {
      await waitFor('every event to be recorded', async () => {
        const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM walflow.events`.execute(db);
        return rows[0]!.n === 2 * ROWS;
      }, { timeoutMs: 60_000 });
    } finally {
      await consumer.stop();
    }
    // A batch is full once its text reaches the bound; the slice that made it so, at most one slice plus a row, is the most it goes past.
    expect(Math.max(...batchTexts)).toBeLessThanOrEqual(BATCH_TEXT + SLICE_TEXT + ROW_TEXT + 1000);
    expect(batchTexts.length).toBeGreaterThanOrEqual(Math.ceil((2 * ROWS * ROW_TEXT) / (BATCH_TEXT + SLICE_TEXT + ROW_TEXT)));
    expect(await sql<{ n: number }>`SELECT count(*)::int AS n FROM walflow.outbox`.execute(db).then(({ rows }) => rows[0]!.n)).toBe(0);
  });
});
