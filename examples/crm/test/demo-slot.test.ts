import { cp, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase, DEFAULT_MIGRATIONS_DIR } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { silentLogger } from '../../../packages/server/test/fixtures.js';
import { catalog } from '../src/catalog.js';
import { migrateWithDemoSlot } from '../src/demo/demo-slot.js';

const database = useTestDatabase({ prefix: 'crm_demo_slot' });

it('drops the slot it made when the migrations after it fail, which would otherwise keep the server’s WAL', async () => {
  const db = createDatabase(database.url, silentLogger);
  const broken = await mkdtemp(join(tmpdir(), 'walflow-migrations-'));
  try {
    for (const file of await readdir(DEFAULT_MIGRATIONS_DIR)) await cp(join(DEFAULT_MIGRATIONS_DIR, file), join(broken, file));
    await writeFile(join(broken, '9999_fails.sql'), 'SELECT 1/0;\n');
    await expect(
      migrateWithDemoSlot({ db, databaseUrl: database.url, slotName: database.slotName, logger: silentLogger, migrationsDir: broken, catalog }),
    ).rejects.toMatchObject({ code: 'migration_failed' });
    const { rows } = await sql`SELECT FROM pg_replication_slots WHERE slot_name = ${database.slotName}`.execute(db);
    expect(rows).toHaveLength(0);
  } finally {
    await rm(broken, { recursive: true, force: true });
    await db.destroy();
  }
});
