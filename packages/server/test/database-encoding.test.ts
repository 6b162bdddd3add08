import type { WalflowDatabase } from '@walflow/core';
import { createDatabase, migrate } from '@walflow/server';
import { createTestDatabase, useTestDatabase, type CreatedTestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from './fixtures.js';

const cluster = useTestDatabase();
let latin1: CreatedTestDatabase;
let db: Kysely<WalflowDatabase>;

beforeAll(async () => {
  latin1 = await createTestDatabase(cluster.adminUrl, 'walflow_latin1', { encoding: 'LATIN1' });
  db = createDatabase(latin1.url, silentLogger);
});
afterAll(async () => {
  await db?.destroy();
  await latin1?.drop();
});

describe('a database whose encoding is not UTF-8', () => {
  it('is refused by migrate before anything is made, saying what walflow needs', async () => {
    await expect(migrate({ db, slotName: cluster.slotName, logger: silentLogger })).rejects.toMatchObject({
      code: 'config_invalid',
      message: expect.stringMatching(/encoded in LATIN1; walflow needs a UTF8 database/),
    });
    const { rows } = await sql<{ schemas: number; slots: number }>`
      SELECT (SELECT count(*)::int FROM pg_namespace WHERE nspname = 'walflow') AS schemas,
             (SELECT count(*)::int FROM pg_replication_slots WHERE slot_name = ${cluster.slotName}) AS slots`.execute(db);
    expect(rows).toEqual([{ schemas: 0, slots: 0 }]);
  });
});
