import { createDatabase } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { migrationsAdding, silentLogger } from '../../../packages/server/test/fixtures.js';
import { catalog } from '../src/catalog.js';
import { migrateWithDemoSlot } from '../src/demo/demo-slot.js';

const database = useTestDatabase({ prefix: 'crm_demo_slot' });

it('drops the slot it made when the migrations after it fail, which would otherwise keep the server’s WAL', async () => {
  const db = createDatabase(database.url, silentLogger);
  const broken = await migrationsAdding('9999_fails.sql', 'SELECT 1/0;');
  try {
    await expect(
      migrateWithDemoSlot({ db, databaseUrl: database.url, slotName: database.slotName, logger: silentLogger, migrationsDir: broken.dir, catalog }),
    ).rejects.toMatchObject({ code: 'migration_failed' });
    const { rows } = await sql`SELECT FROM pg_replication_slots WHERE slot_name = ${database.slotName}`.execute(db);
    expect(rows).toHaveLength(0);
  } finally {
    await broken.remove();
    await db.destroy();
  }
});
