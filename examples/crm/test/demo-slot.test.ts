import { createDatabase } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { migrationsAdding, silentLogger } from '../../../packages/server/test/fixtures.js';
import { catalog } from '../src/catalog.js';
import { CleanupStack } from '../src/demo/cleanup-stack.js';
import { migrateWithDemoSlot } from '../src/demo/demo-slot.js';

const database = useTestDatabase({ prefix: 'crm_demo_slot' });

it('registers the drop of the slot before making it: migrations that fail after it, or a signal, leave no slot', async () => {
  const db = createDatabase(database.url, silentLogger);
  const broken = await migrationsAdding('9999_fails.sql', 'SELECT 1/0;');
  const cleanup = new CleanupStack();
  try {
    await expect(
      migrateWithDemoSlot({ db, databaseUrl: database.url, slotName: database.slotName, logger: silentLogger, migrationsDir: broken.dir, catalog }, cleanup),
    ).rejects.toMatchObject({ code: 'migration_failed' });
    await cleanup.run();
    const { rows } = await sql`SELECT FROM pg_replication_slots WHERE slot_name = ${database.slotName}`.execute(db);
    expect(rows).toHaveLength(0);
  } finally {
    await broken.remove();
    await db.destroy();
  }
});
