import type { WalflowDatabase } from '@walflow/core';
import { createDatabase, migrate } from '@walflow/server';
import { createTestDatabase, useTestDatabase, waitFor } from '@walflow/testing';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keptWarnings, migrationsAdding, openMigrated, silentLogger } from './fixtures.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
const upgrades: { remove(): Promise<void> }[] = [];

beforeAll(async () => {
  db = await openMigrated(database);
});
afterAll(async () => {
  await db.destroy();
  for (const upgrade of upgrades) await upgrade.remove();
});

/** walflow's migrations and one more, `name`, that alters the outbox as an upgrade may. */
async function upgradeAdding(name: string, statement: string): Promise<string> {
  const upgrade = await migrationsAdding(name, statement);
  upgrades.push(upgrade);
  return upgrade.dir;
}

/** A session of the application's, named `name`, inside a transaction that has emitted an event: it holds the outbox. */
async function transactionHoldingTheOutbox(name: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: database.url, application_name: name });
  await client.connect();
  await client.query('BEGIN');
  await client.query(EMIT);
  return client;
}

const EMIT = `SELECT walflow.emit('policy.approved', '{}', tenant_id => 'locks')`;

async function outboxColumns(): Promise<string[]> {
  const tables = await db.introspection.getTables();
  return tables.find((table) => table.schema === 'walflow' && table.name === 'outbox')?.columns.map((column) => column.name) ?? [];
}

describe('walflow migrate and the locks of the tables it alters', () => {
  // Waiting for the outbox's lock, a migration queues every later emit() behind it for as long as the transaction
  // that holds the outbox lasts: here for ever, so the second emit() would only end by its statement timeout.
  it("gives a transaction that holds a table the time it needs: writes are not queued behind the migration's wait", async () => {
    const upgrade = await upgradeAdding('9998_add_to_the_outbox.sql', 'ALTER TABLE walflow.outbox ADD COLUMN upgraded boolean;');
    const holding = await transactionHoldingTheOutbox('long-transaction');
    const writer = new pg.Client({ connectionString: database.url, application_name: 'writer', statement_timeout: 5000 });
    await writer.connect();
    const { logger, warnings } = keptWarnings();
    try {
      const migrating = migrate({ db, slotName: database.slotName, logger, migrationsDir: upgrade, lockTimeoutMs: 200, lockRetryForMs: 60_000 });
      migrating.catch(() => undefined);
      await waitFor('the migration to give up a lock once', () => warnings.includes('a migration could not take a lock: rolled back to let writes through; trying again'));
      await writer.query(EMIT);
      await holding.query('COMMIT');
      expect((await migrating).applied).toEqual(['9998_add_to_the_outbox.sql']);
      expect(await outboxColumns()).toContain('upgraded');
    } finally {
      await holding.end();
      await writer.end();
    }
  });

  it('fails once its retry time is over, naming the sessions that hold the locks, and applies nothing', async () => {
    const upgrade = await upgradeAdding('9999_add_to_the_outbox_again.sql', 'ALTER TABLE walflow.outbox ADD COLUMN never_added boolean;');
    const holding = await transactionHoldingTheOutbox('idle-in-transaction');
    try {
      const failure = await migrate({ db, slotName: database.slotName, logger: silentLogger, migrationsDir: upgrade, lockTimeoutMs: 200, lockRetryForMs: 600 }).then(
        () => null,
        (error: unknown) => error,
      );
      expect(failure).toMatchObject({
        code: 'migration_failed',
        message: expect.stringMatching(
          /^migration 99\d\d_\w+\.sql failed; no migration of this run was applied: canceling statement due to lock timeout \((once|\d+ times), with a lock timeout of 200 ms\); other sessions hold walflow's tables: pid \d+ \(idle-in-transaction, idle in transaction, its transaction \d+ s old\)$/,
        ),
      });
    } finally {
      await holding.query('ROLLBACK');
      await holding.end();
    }
    expect(await outboxColumns()).not.toContain('never_added');
  });
});

describe('walflow migrate creating the slot', () => {
  it('waits for a transaction of the server that has written only as long as its retry time, naming it', async () => {
    const fresh = await createTestDatabase(database.adminUrl);
    const freshDb = createDatabase(fresh.url, silentLogger);
    const slot = `${database.slotName}_fresh`;
    // A session of another database, idle in a transaction that wrote: a new slot waits for every such one.
    const writer = new pg.Client({ connectionString: database.url, application_name: 'open-writer' });
    await writer.connect();
    try {
      await writer.query('BEGIN; SELECT txid_current()');
      await expect(migrate({ db: freshDb, slotName: slot, logger: silentLogger, lockTimeoutMs: 200, lockRetryForMs: 600 })).rejects.toMatchObject({
        code: 'migration_failed',
        message: expect.stringMatching(/could not be created: it waits for these transactions of the server to end: .*open-writer, database/),
      });
      // Once that transaction ends, the retries create it.
      const migrating = migrate({ db: freshDb, slotName: slot, logger: silentLogger, lockTimeoutMs: 200, lockRetryForMs: 30_000 });
      await new Promise((resolve) => setTimeout(resolve, 500));
      await writer.query('COMMIT');
      await expect(migrating).resolves.toMatchObject({ slotCreated: true });
    } finally {
      await writer.end();
      await freshDb.destroy();
      await fresh.drop();
    }
  });
});
