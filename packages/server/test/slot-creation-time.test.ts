import { useTestDatabase } from '@walflow/testing';
import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { openMigrated } from './fixtures.js';

const database = useTestDatabase();

it('records when the slot was created, before the outbox existed: no row an application writes can be older', async () => {
  const db = await openMigrated(database);
  try {
    // Recorded once the migrations had committed, it came after rows written meanwhile, which start then reported
    // as older than the slot although the slot streams them.
    const { rows } = await sql<{ before: boolean }>`
      SELECT s.slot_created_at < (SELECT min(applied_at) FROM walflow.schema_migrations) AS before
        FROM walflow.consumer_state s WHERE s.slot_name = ${database.slotName}`.execute(db);
    expect(rows).toEqual([{ before: true }]);
  } finally {
    await db.destroy();
  }
});
