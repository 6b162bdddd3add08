import { StreamSession, verifyConsumer } from '@walflow/cdc';
import type { BatchDispatcher, WalflowDatabase } from '@walflow/core';
import { Dispatcher } from '@walflow/executor';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openMigrated, silentLogger } from '../../server/test/fixtures.js';

/** The server gives up on a standby that sends no status for this long (set for the test's connection only). */
const SENDER_TIMEOUT_MS = 1000;
/** The first batch takes several times that, holding the stream back meanwhile. */
const SLOW_BATCH_MS = 3500;

const database = useTestDatabase({ prefix: 'walflow_held' });
let db: Kysely<WalflowDatabase>;

beforeAll(async () => {
  db = await openMigrated(database);
});
afterAll(async () => {
  await db.destroy();
});

describe('a stream held back by a batch slower than wal_sender_timeout', () => {
  it('keeps its connection: standby status goes on while the server\'s keepalives wait unread', async () => {
    await sql`
      DO $$ BEGIN
        FOR n IN 1..20 LOOP
          INSERT INTO walflow.outbox (event_type, aggregate_type, aggregate_id, payload) VALUES ('order.placed', 'order', 'o' || n, jsonb_build_object('n', n));
          COMMIT;
        END LOOP;
      END $$`.execute(db);
    const real = new Dispatcher({ db, slotName: database.slotName, logger: silentLogger });
    let batches = 0;
    const slowFirst: BatchDispatcher = {
      async dispatch(batch) {
        if (batches++ === 0) await new Promise((resolve) => setTimeout(resolve, SLOW_BATCH_MS));
        return real.dispatch(batch);
      },
    };
    const { decoder, confirmedFlush } = await verifyConsumer(db, database.slotName);
    const session = new StreamSession({
      connection: { connectionString: database.url, options: `-c wal_sender_timeout=${SENDER_TIMEOUT_MS}` },
      slotName: database.slotName,
      decoder,
      confirmedFlush,
      dispatcher: slowFirst,
      logger: silentLogger,
      // Two rows make a full batch, and one batch at a time: the third row waits, and the socket is paused.
      maxBatchRows: 2,
      batchesInFlight: 1,
      statusIntervalMs: SENDER_TIMEOUT_MS / 4,
    });
    let failure: unknown = null;
    const streaming = session.run().catch((error: unknown) => (failure = error));
    try {
      await waitFor('every event to be recorded', async () => {
        const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM walflow.events`.execute(db);
        return rows[0]!.n === 20 || failure !== null;
      }, { timeoutMs: 30_000 });
    } finally {
      await session.stop();
      await streaming;
    }
    expect(failure).toBeNull();
    expect(batches).toBeGreaterThanOrEqual(10);
  });
});
