import type { WalflowDatabase } from '@walflow/core';
import { Dispatcher } from '@walflow/executor';
import { createDatabase, migrate } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { silentLogger, testConsumer } from '../../server/test/fixtures.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;

beforeAll(async () => {
  db = createDatabase(database.url, silentLogger);
  await migrate({ db, slotName: database.slotName, logger: silentLogger, decoder: 'pgoutput' });
});
afterAll(async () => {
  await db.destroy();
});

it('keeps a pgoutput slot from streaming while its publication leaves outbox rows out, and streams again once it is restored', async () => {
  const consumer = testConsumer(database, db, new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }), { downRecheckMs: 100 });
  try {
    for (const [narrowing, problem] of [
      ['ALTER PUBLICATION walflow_outbox DROP TABLE walflow.outbox', 'no longer holds walflow.outbox'],
      [`ALTER PUBLICATION walflow_outbox SET (publish = 'delete')`, 'no longer publishes inserts'],
      [`ALTER PUBLICATION walflow_outbox SET TABLE walflow.outbox WHERE (tenant_id = 'one')`, 'with a row filter or a column list'],
      // Without tenant_id, every event would be recorded under the default tenant.
      ['ALTER PUBLICATION walflow_outbox SET TABLE walflow.outbox (id, event_type, payload, metadata)', 'with a row filter or a column list'],
    ] as const) {
      await sql.raw(narrowing).execute(db);
      consumer.start();
      const down = await waitFor('the consumer to refuse the publication', () => consumer.status.state === 'down' && consumer.status);
      expect(down.reason).toContain(problem);
      expect(down.reason).toContain('then run `walflow repair`');
      await sql`ALTER PUBLICATION walflow_outbox SET TABLE walflow.outbox`.execute(db);
      await sql`ALTER PUBLICATION walflow_outbox SET (publish = 'insert')`.execute(db);
      await waitFor('the consumer to stream again', () => consumer.status.state === 'streaming');
      await consumer.stop();
    }
  } finally {
    await consumer.stop();
  }
});
