import { cp, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WalflowDatabase } from '@walflow/core';
import { DEFAULT_MIGRATIONS_DIR, migrate } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keptWarnings, openMigrated, silentLogger } from './fixtures.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
/** walflow's migrations and one more that alters the outbox, as an upgrade may. */
let upgrade: string;

beforeAll(async () => {
  db = await openMigrated(database);
  upgrade = await mkdtemp(join(tmpdir(), 'walflow-migrations-'));
  for (const file of await readdir(DEFAULT_MIGRATIONS_DIR)) await cp(join(DEFAULT_MIGRATIONS_DIR, file), join(upgrade, file));
  await writeFile(join(upgrade, '9999_alter_the_outbox.sql'), 'ALTER TABLE walflow.outbox ADD COLUMN upgraded boolean;\n');
});
afterAll(async () => {
  await db.destroy();
  await rm(upgrade, { recursive: true, force: true });
});

/** A session of the application's, named `name`. */
async function applicationSession(name: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: database.url, application_name: name });
  await client.connect();
  return client;
}

const EMIT = `SELECT walflow.emit('policy.approved', '{}', tenant_id => 'locks')`;

describe('walflow migrate and the locks of the tables it alters', () => {
  // Waiting for the outbox's lock, a migration queues every later emit() behind it for as long as the transaction
  // that holds the outbox lasts: here for ever, so the second emit() would only end by its statement timeout.
  it("gives a transaction that holds a table the time it needs: writes are not queued behind the migration's wait", async () => {
    const holding = await applicationSession('long-transaction');
    const writer = await applicationSession('writer');
    const { logger, warnings } = keptWarnings();
    try {
      await holding.query('BEGIN');
      await holding.query(EMIT);
      const migrating = migrate({ db, slotName: database.slotName, logger, migrationsDir: upgrade, lockTimeoutMs: 200, lockRetryForMs: 60_000 });
      migrating.catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 500));
      await writer.query(`SET statement_timeout = 5000`);
      await writer.query(EMIT);
      expect(warnings).toContain('a migration waited too long for a lock: rolled back to let writes through; trying again');
      await holding.query('COMMIT');
      expect((await migrating).applied).toEqual(['9999_alter_the_outbox.sql']);
    } finally {
      await holding.end();
      await writer.end();
    }
  });

  it('fails once its retry time is over, naming the sessions that hold the locks, and applies nothing', async () => {
    const holding = await applicationSession('idle-in-transaction');
    try {
      await holding.query('BEGIN');
      await holding.query(EMIT);
      await writeFile(join(upgrade, '9998_alter_the_outbox_again.sql'), 'ALTER TABLE walflow.outbox DROP COLUMN upgraded;\n');
      const failure = await migrate({ db, slotName: database.slotName, logger: silentLogger, migrationsDir: upgrade, lockTimeoutMs: 200, lockRetryForMs: 600 }).then(
        () => null,
        (error: unknown) => error,
      );
      expect(failure).toMatchObject({
        code: 'migration_failed',
        message: expect.stringMatching(/^migration 9998_alter_the_outbox_again\.sql failed; no migration of this run was applied: waited 200 ms for a lock (once|\d+ times), and other sessions hold walflow's tables: pid \d+ \(idle-in-transaction, idle in transaction, its transaction \d+ s old\)$/),
      });
    } finally {
      await holding.query('ROLLBACK');
      await holding.end();
    }
    const tables = await db.introspection.getTables();
    expect(tables.find((table) => table.schema === 'walflow' && table.name === 'outbox')?.columns.map((column) => column.name)).toContain('upgraded');
  });
});
