import { uuidV7 } from '@walflow/core';
import { useTestDatabase } from '@walflow/testing';
import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { sinkPagesOf } from '../src/replay-to-sink.js';
import { openMigrated } from './fixtures.js';

const database = useTestDatabase();

it('reads a replay for the sink in pages bounded by their text, a payload larger than a message left in the database', async () => {
  const db = await openMigrated(database);
  try {
    const from = new Date(Date.now() - 60_000);
    const ids = [300_000, 300_000, 5_000_000, 300_000].map(() => uuidV7());
    for (const [position, size] of [300_000, 300_000, 5_000_000, 300_000].entries()) {
      await sql`INSERT INTO walflow.events (id, event_type, tenant_id, payload, committed_at, commit_lsn, tx_position, xid)
                VALUES (${ids[position]}::uuid, 'replay.page', 'pages', jsonb_build_object('text', repeat('x', ${size})), now(), '0/1', ${position}, 1)`.execute(db);
    }
    const range = { from, to: new Date(Date.now() + 60_000), tenantId: 'pages' };
    const pages = async (bytes: number) => {
      const read = [];
      for await (const page of sinkPagesOf(db, range, { events: 500, bytes, messageBytes: 1_000_000 })) read.push(page);
      return read;
    };
    // Each page ends once its text passes 1 byte: one event each.
    expect((await pages(1)).map((page) => page.map((event) => event.id))).toEqual(ids.map((id) => [id]));
    const [whole] = await pages(32 * 1024 * 1024);
    expect(whole!.map((event) => event.id)).toEqual(ids);
    expect(whole![2]).toMatchObject({ payloadJson: null, payloadBytes: 5_000_012 });
    expect(whole![0]!.payloadJson).toBe(`{"text": "${'x'.repeat(300_000)}"}`);
  } finally {
    await db.destroy();
  }
});
