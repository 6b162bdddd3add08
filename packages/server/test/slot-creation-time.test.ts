import type { WalflowDatabase } from '@walflow/core';
import { createDatabase, migrate } from '@walflow/server';
import { createTestDatabase, useTestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { expect, it } from 'vitest';
import { migrationsAdding, silentLogger } from './fixtures.js';

const database = useTestDatabase();

/** Whether the slot's recorded time comes before every migration: no row an application writes can be older. */
async function slotTimeFirst(db: Kysely<WalflowDatabase>, slotName = database.slotName): Promise<boolean> {
  const { rows } = await sql<{ before: boolean }>`
    SELECT s.slot_created_at < (SELECT min(applied_at) FROM walflow.schema_migrations) AS before
      FROM walflow.consumer_state s WHERE s.slot_name = ${slotName}`.execute(db);
  return rows[0]?.before === true;
}

it('records when the slot was created, before the outbox existed', async () => {
  const fresh = await createTestDatabase(database.adminUrl);
  const db = createDatabase(fresh.url, silentLogger);
  try {
    await migrate({ db, slotName: `${database.slotName}_first`, logger: silentLogger });
    expect(await slotTimeFirst(db, `${database.slotName}_first`)).toBe(true);
  } finally {
    await db.destroy();
    await fresh.drop();
  }
});

it('records a time before the outbox existed when the first run failed after making the slot', async () => {
  const db = createDatabase(database.url, silentLogger);
  const broken = await migrationsAdding('9999_fails.sql', 'SELECT 1/0;');
  try {
    // The slot is made, then every migration rolls back.
    await expect(migrate({ db, slotName: database.slotName, logger: silentLogger, migrationsDir: broken.dir })).rejects.toMatchObject({ code: 'migration_failed' });
    // Recorded once the migrations had committed, the time came after rows written meanwhile, which start then
    // reported as older than the slot although the slot streams them.
    await migrate({ db, slotName: database.slotName, logger: silentLogger });
    expect(await slotTimeFirst(db)).toBe(true);
  } finally {
    await broken.remove();
    await db.destroy();
  }
});
