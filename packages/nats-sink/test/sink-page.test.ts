import { uuidV7 } from '@walflow/core';
import { useTestDatabase } from '@walflow/testing';
import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { openMigrated } from '../../server/test/fixtures.js';
import { eventsAfter, registerCursor, savedCursor } from '../src/sink-cursor.js';

const database = useTestDatabase();

/** Events recorded in one transaction after the sink's cursor, each with a payload of `sizes[i]` characters of text. */
async function recordEvents(db: Awaited<ReturnType<typeof openMigrated>>, sizes: number[]): Promise<string[]> {
  const ids = sizes.map(() => uuidV7());
  await db.transaction().execute(async (trx) => {
    for (const [position, size] of sizes.entries()) {
      await sql`INSERT INTO walflow.events (id, event_type, tenant_id, payload, metadata, committed_at, commit_lsn, tx_position, xid, recorded_xid)
                VALUES (${ids[position]}::uuid, 'sink.page', 'page', jsonb_build_object('text', repeat('x', ${size})),
                        jsonb_build_object('actorId', 'u-1', 'note', repeat('m', 100000)), now(), '0/1', ${position}, 1, pg_current_xact_id())`.execute(trx);
    }
  });
  return ids;
}

it('reads a page no larger than its bytes allow, and leaves a payload larger than a message in the database', async () => {
  const db = await openMigrated(database);
  try {
    await db.transaction().execute((trx) => registerCursor(trx, 'nats:PAGE'));
    const ids = await recordEvents(db, [300_000, 300_000, 5_000_000, 300_000, 300_000, 300_000]);
    const cursor = (await savedCursor(db, 'nats:PAGE'))!;

    const page = await eventsAfter(db, cursor, { events: 500, bytes: 1_000_000, messageBytes: 1_000_000 });
    // The third's payload stays in the database; the fifth takes the page past 1,000,000 bytes and ends it.
    expect(page.map((event) => event.eventId)).toEqual(ids.slice(0, 5));
    expect(page[0]!.payloadJson).toBe(`{"text": "${'x'.repeat(300_000)}"}`);
    expect(page[2]).toMatchObject({ payloadJson: null, payloadBytes: 5_000_012 });
    // Only what a message carries of the metadata.
    expect(page[0]!.metadata).toEqual({ actorId: 'u-1' });

    // However large, the first event is read: a page never stops before it.
    const one = await eventsAfter(db, cursor, { events: 500, bytes: 1, messageBytes: 1_000_000 });
    expect(one.map((event) => event.eventId)).toEqual(ids.slice(0, 1));
    const all = await eventsAfter(db, cursor, { events: 500, bytes: 32 * 1024 * 1024, messageBytes: 1_000_000 });
    expect(all.map((event) => event.eventId)).toEqual(ids);
  } finally {
    await db.destroy();
  }
});
