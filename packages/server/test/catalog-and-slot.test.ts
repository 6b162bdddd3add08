import { fileURLToPath } from 'node:url';
import { emit } from '@walflow/outbox';
import { createDatabase, migrate, startWalflow, type RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { countsFor, silentLogger, startTestWalflow, testConfig } from './fixtures.js';

const database = useTestDatabase();
const catalogModule = fileURLToPath(new URL('./fixtures/catalog.ts', import.meta.url));
let walflow: RunningWalflow | undefined;

afterAll(async () => {
  await walflow?.stop();
});

describe('WALFLOW_CATALOG', () => {
  it('parks unknown types and invalid payloads with the reason, and records the valid events', async () => {
    walflow = await startTestWalflow(database.url, database.slotName, { catalogModule });
    const { db } = walflow;
    const [unknown, invalid, valid] = await db.transaction().execute(async (trx) => [
      await emit(trx, { type: 'policy.rejected', tenantId: 'catalog', payload: { policyId: 'p1' } }),
      await emit(trx, { type: 'policy.approved', tenantId: 'catalog', payload: { policyId: 'p2', premium: -1 } }),
      await emit(trx, { type: 'policy.approved', tenantId: 'catalog', payload: { policyId: 'p3', premium: 100 } }),
    ]);
    await waitFor('the valid event', async () => (await countsFor(db, 'catalog')).events === 1);
    const letters = await db.selectFrom('walflow.dead_letters').select(['outbox_id', 'code', 'reason']).where('tenant_id', '=', 'catalog').orderBy('code').execute();
    expect(letters).toEqual([
      { outbox_id: unknown, code: 'event_unknown', reason: 'unknown event type policy.rejected' },
      { outbox_id: invalid, code: 'payload_invalid', reason: expect.stringMatching(/premium/) },
    ]);
    expect(await db.selectFrom('walflow.events').select('id').where('tenant_id', '=', 'catalog').execute()).toEqual([{ id: valid }]);
    expect((await countsFor(db, 'catalog')).outbox).toBe(0);
    await walflow.stop();
    walflow = undefined;
  });
});

describe('a lost replication slot', () => {
  it('is reported, never recreated silently, by the consumer and by migrate', async () => {
    const db = createDatabase(database.url, silentLogger);
    try {
      await migrate({ db, slotName: database.slotName, logger: silentLogger });
      await sql`SELECT pg_drop_replication_slot(${database.slotName})`.execute(db);

      await expect(migrate({ db, slotName: database.slotName, logger: silentLogger })).rejects.toMatchObject({
        code: 'slot_missing',
        message: expect.stringContaining('walflow repair'),
      });

      walflow = await startWalflow(testConfig(database.url, database.slotName), silentLogger);
      const status = await waitFor('the consumer to report the lost slot', () => walflow!.consumerStatus().state === 'down' && walflow!.consumerStatus());
      expect(status.reason).toMatch(/replication slot .* does not exist.*walflow repair/);
      const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM pg_replication_slots WHERE slot_name = ${database.slotName}`.execute(db);
      expect(rows[0]?.n).toBe('0');
    } finally {
      await db.destroy();
    }
  });
});
