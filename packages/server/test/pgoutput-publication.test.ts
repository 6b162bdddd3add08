import { emit } from '@walflow/outbox';
import { createDatabase, migrate, repairSlot, type RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger, startTestWalflow } from './fixtures.js';

const database = useTestDatabase();
let walflow: RunningWalflow | undefined;

afterAll(async () => {
  await walflow?.stop();
});

describe('a pgoutput slot whose publication was lost', () => {
  it('is recreated by migrate and repair with the outbox in its publication, and streams the outbox again', async () => {
    const db = createDatabase(database.url, silentLogger);
    try {
      await migrate({ db, slotName: database.slotName, logger: silentLogger, decoder: 'pgoutput' });
      // Dropped by hand, or by a restore made with --no-publications; the error message's advice follows.
      await sql`DROP PUBLICATION walflow_outbox`.execute(db);
      await migrate({ db, slotName: database.slotName, logger: silentLogger, decoder: 'pgoutput' });
      await repairSlot({ db, databaseUrl: database.url, slotName: database.slotName, logger: silentLogger, decoder: 'pgoutput' });
      const { rows } = await sql<{ tables: string[] }>`
        SELECT array_agg(schemaname || '.' || tablename) AS tables FROM pg_publication_tables WHERE pubname = 'walflow_outbox'`.execute(db);
      expect(rows).toEqual([{ tables: ['walflow.outbox'] }]);

      walflow = await startTestWalflow(database.url, database.slotName, { decoder: 'pgoutput' });
      const id = await emit(db, { type: 'policy.approved', tenantId: 'publication', payload: { n: 1 } });
      await waitFor('the event to be recorded', async () => (await db.selectFrom('walflow.events').select('id').where('id', '=', id).executeTakeFirst()) !== undefined);
    } finally {
      await db.destroy();
    }
  });
});
