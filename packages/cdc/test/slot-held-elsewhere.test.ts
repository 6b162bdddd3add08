import { setTimeout as sleep } from 'node:timers/promises';
import { Dispatcher } from '@walflow/executor';
import { consumerCheck } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql } from 'kysely';
import { LogicalReplicationService, Wal2JsonPlugin } from 'pg-logical-replication';
import { expect, it } from 'vitest';
import { openMigrated, silentLogger, testConsumer } from '../../server/test/fixtures.js';

const database = useTestDatabase({ prefix: 'walflow_held_slot' });

it('reconnects while another client streams its slot, reconnecting since the first attempt, and the report goes down past its threshold', async () => {
  const db = await openMigrated(database);
  // Not a walflow process: no leader lock keeps it from the slot, and every START_REPLICATION of walflow's fails.
  const other = new LogicalReplicationService({ connectionString: database.url }, { acknowledge: { auto: false, timeoutSeconds: 0 } });
  other.on('error', () => undefined);
  void other.subscribe(new Wal2JsonPlugin({}), database.slotName).catch(() => undefined);
  const consumer = testConsumer(database, db, new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }));
  try {
    await waitFor('the other client to hold the slot', async () => {
      const { rows } = await sql<{ active: boolean }>`SELECT active FROM pg_replication_slots WHERE slot_name = ${database.slotName}`.execute(db);
      return rows[0]?.active === true;
    });
    consumer.start();
    const first = await waitFor('the consumer to reconnect', () => consumer.status.state === 'reconnecting' && consumer.status);
    // Attempts every 100 ms at most: several fail meanwhile, and the state still dates from the first.
    await sleep(1_500);
    expect(consumer.status).toMatchObject({ state: 'reconnecting', since: first.since });
    expect(consumerCheck(consumer.status, { reconnectingSecondsDown: 0.5 }).state).toBe('down');
  } finally {
    await consumer.stop();
    await other.stop();
    await db.destroy();
  }
});
