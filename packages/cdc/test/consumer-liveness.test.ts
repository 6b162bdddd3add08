import type { BatchDispatcher, WalflowDatabase } from '@walflow/core';
import { Dispatcher } from '@walflow/executor';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keptWarnings, openMigrated, silentLogger, testConsumer } from '../../server/test/fixtures.js';

const database = useTestDatabase({ prefix: 'walflow_liveness' });
let db: Kysely<WalflowDatabase>;

beforeAll(async () => {
  db = await openMigrated(database);
});
afterAll(async () => {
  await db.destroy();
});

async function slotActive(): Promise<boolean> {
  const { rows } = await sql<{ active: boolean }>`SELECT active FROM pg_replication_slots WHERE slot_name = ${database.slotName}`.execute(db);
  return rows[0]?.active === true;
}

describe('a stop while the consumer checks the slot before a new session', () => {
  it('starts no session and returns', async () => {
    const consumer = testConsumer(database, db, new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }));
    consumer.start();
    const locker = new pg.Client({ connectionString: database.url });
    await locker.connect();
    try {
      await waitFor('the consumer to stream', () => consumer.status.state === 'streaming');
      // The checks before the next session read walflow.consumer_state: hold them there.
      await locker.query('BEGIN; LOCK walflow.consumer_state IN ACCESS EXCLUSIVE MODE');
      await sql`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = ${database.slotName}`.execute(db);
      await waitFor('the checks to wait for the lock', async () => {
        const { rows } = await sql<{ n: number }>`
          SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%consumer_state%'`.execute(db);
        return rows[0]!.n > 0;
      });
      const stopped = consumer.stop().then(() => 'stopped' as const);
      await locker.query('ROLLBACK');
      const outcome = await Promise.race([stopped, new Promise((resolve) => setTimeout(() => resolve('still running after 5 s'), 5_000))]);
      expect(outcome).toBe('stopped');
      expect(consumer.status.state).toBe('stopped');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await slotActive()).toBe(false);
    } finally {
      await locker.end();
      await Promise.race([consumer.stop(), new Promise((resolve) => setTimeout(resolve, 1_000))]);
    }
  });
});

describe('keepalives before the first transaction is acknowledged', () => {
  // PostgreSQL 15's walsender sends a keepalive before any data, which an idle session confirms: a first
  // transaction then never leaves the session without a position to answer with. The consumer does not count on
  // it (AckTracker starts from the slot's position, ack-tracker.test.ts); this checks the whole path.
  it('are answered, so a first batch slower than wal_sender_timeout keeps the connection', async () => {
    const events = await sql<{ n: string }>`SELECT count(*) AS n FROM walflow.events`.execute(db);
    const before = Number(events.rows[0]!.n);
    await sql`INSERT INTO walflow.outbox (event_type, payload) VALUES ('order.placed', '{"slow": true}')`.execute(db);
    const real = new Dispatcher({ db, slotName: database.slotName, logger: silentLogger });
    const batches: number[] = [];
    // The first batch takes three times the walsender's timeout to be recorded.
    const slowFirst: BatchDispatcher = {
      async dispatch(batch) {
        batches.push(batch.events.length);
        if (batches.length === 1) await new Promise((resolve) => setTimeout(resolve, 3_000));
        return real.dispatch(batch);
      },
    };
    const { logger: watched, warnings } = keptWarnings();
    const consumer = testConsumer(database, db, slowFirst, { connection: { connectionString: database.url, options: '-c wal_sender_timeout=1000' }, logger: watched });
    consumer.start();
    try {
      await waitFor('the event to be recorded', async () => {
        const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM walflow.events`.execute(db);
        return Number(rows[0]!.n) === before + 1;
      });
    } finally {
      await consumer.stop();
    }
    expect(warnings).not.toContain('replication session failed');
    expect(batches).toEqual([1]);
  });
});

describe('an idle session', () => {
  it('answers the keepalives that ask for a reply, so a quiet database keeps the connection', async () => {
    // Nothing is written meanwhile: every keepalive carries the position the session already confirmed.
    const { logger: watched, warnings } = keptWarnings();
    const consumer = testConsumer(database, db, new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }), {
      connection: { connectionString: database.url, options: '-c wal_sender_timeout=1000' },
      logger: watched,
    });
    consumer.start();
    try {
      await waitFor('the consumer to stream', () => consumer.status.state === 'streaming');
      await new Promise((resolve) => setTimeout(resolve, 3_000));
    } finally {
      await consumer.stop();
    }
    expect(warnings).not.toContain('replication session failed');
  });
});
