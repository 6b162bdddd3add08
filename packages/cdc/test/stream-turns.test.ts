import { StreamSession, verifyConsumer, type ChangeDecoder } from '@walflow/cdc';
import type { BatchDispatcher, WalflowDatabase } from '@walflow/core';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openMigrated, silentLogger } from '../../server/test/fixtures.js';

/** One event each: three messages (begin, insert, commit), so the backlog is 12,000 small messages. */
const TRANSACTIONS = 4000;
/** What walflow streams with: the session's default. */
const MESSAGES_PER_TURN = 500;

const database = useTestDatabase({ prefix: 'walflow_turns' });
let db: Kysely<WalflowDatabase>;

beforeAll(async () => {
  db = await openMigrated(database);
});
afterAll(async () => {
  await db.destroy();
});

describe('a backlog streamed into a busy process', () => {
  it('lets the event loop turn every few hundred messages, so replies and probes are not held up', async () => {
    await sql`
      DO $$ BEGIN
        FOR n IN 1..${sql.lit(TRANSACTIONS)} LOOP
          INSERT INTO walflow.outbox (event_type, aggregate_type, aggregate_id, payload)
          VALUES ('order.placed', 'order', 'o' || n, jsonb_build_object('n', n));
          COMMIT;
        END LOOP;
      END $$`.execute(db);

    // A callback queued for the next turn of the event loop stands in for a reply to the dispatch: how many
    // messages are decoded before it runs?
    let probeQueued = false;
    let decodedSinceProbe = 0;
    let mostBeforeProbe = 0;
    const { decoder: slotDecoder } = await verifyConsumer(db, database.slotName);
    const counting: ChangeDecoder = {
      ...slotDecoder,
      decode(raw) {
        decodedSinceProbe++;
        if (!probeQueued) {
          probeQueued = true;
          decodedSinceProbe = 0;
          setImmediate(() => {
            mostBeforeProbe = Math.max(mostBeforeProbe, decodedSinceProbe);
            probeQueued = false;
          });
        }
        return slotDecoder.decode(raw);
      },
    };
    let events = 0;
    const dispatcher: BatchDispatcher = {
      dispatch(batch) {
        events += batch.events.length;
        return Promise.resolve({ recorded: batch.events.length, recordedEvents: batch.events, duplicates: 0, runsQueued: 0, parked: 0, decisions: {} });
      },
    };
    const session = new StreamSession({
      connection: { connectionString: database.url },
      slotName: database.slotName,
      decoder: counting,
      dispatcher,
      logger: silentLogger,
    });
    const streaming = session.run();
    try {
      await waitFor('the whole backlog', () => events === TRANSACTIONS, { timeoutMs: 30_000, intervalMs: 50 });
    } finally {
      await session.stop();
      await streaming;
    }
    expect(events).toBe(TRANSACTIONS);
    expect(mostBeforeProbe).toBeGreaterThan(0);
    expect(mostBeforeProbe).toBeLessThanOrEqual(MESSAGES_PER_TURN);
  });
});
