import type { WalflowDatabase } from '@walflow/core';
import { startWalflow } from '@walflow/server';
import { createTestDatabase, useTestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openMigrated, silentLogger, testConfig } from './fixtures.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;

beforeAll(async () => {
  db = await openMigrated(database);
});
afterAll(() => db.destroy());

const start = () => startWalflow(testConfig(database.url, database.slotName), silentLogger);

describe('walflow start against a schema of another version', () => {
  it('refuses a schema a newer walflow migrated, and one that lacks a migration of its own, saying what to run', async () => {
    await sql`INSERT INTO walflow.schema_migrations (version, name, checksum) VALUES (9999, '9999_from_the_future.sql', 'x')`.execute(db);
    await expect(start()).rejects.toMatchObject({
      code: 'migration_failed',
      message: 'the schema holds migrations this walflow does not know (9999_from_the_future.sql): a newer walflow migrated it; run that version',
    });
    await sql`DELETE FROM walflow.schema_migrations WHERE version = 9999`.execute(db);

    const last = await db.selectFrom('walflow.schema_migrations').selectAll().orderBy('version', 'desc').executeTakeFirstOrThrow();
    await db.deleteFrom('walflow.schema_migrations').where('version', '=', last.version).execute();
    await expect(start()).rejects.toMatchObject({ code: 'migration_failed', message: `the schema lacks migrations ${last.name}: run \`walflow migrate\` of this version first` });
    await db.insertInto('walflow.schema_migrations').values({ version: last.version, name: last.name, checksum: 'another text' }).execute();
    // The same version applied from another text (compared as migrate compares them: by version and checksum).
    await expect(start()).rejects.toMatchObject({ message: expect.stringContaining(`migrations this walflow does not know (${last.name})`) });
    await db.updateTable('walflow.schema_migrations').set({ checksum: last.checksum }).where('version', '=', last.version).execute();

    const walflow = await start();
    await walflow.stop();
  });

  it('refuses a database walflow never migrated', async () => {
    const bare = await createTestDatabase(database.adminUrl);
    try {
      await expect(startWalflow(testConfig(bare.url, database.slotName), silentLogger)).rejects.toMatchObject({
        message: 'this database has no walflow schema: run `walflow migrate` first',
      });
    } finally {
      await bare.drop();
    }
  });
});
