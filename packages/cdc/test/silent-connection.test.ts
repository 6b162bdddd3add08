import type { BatchDispatcher, WalflowDatabase } from '@walflow/core';
import type { ReplicationConsumer, ReplicationConsumerOptions } from '@walflow/cdc';
import { Dispatcher } from '@walflow/executor';
import { emit } from '@walflow/outbox';
import { createDatabase } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openMigrated, silentLogger, testConsumer } from '../../server/test/fixtures.js';
import { startProxy } from '../../server/test/tcp-proxy.js';

const database = useTestDatabase({ prefix: 'walflow_silent' });
let db: Kysely<WalflowDatabase>;

beforeAll(async () => {
  db = await openMigrated(database);
});
afterAll(async () => {
  await db.destroy();
});

/** A logger that keeps the error message of every warning. */
function failureLogger(failures: string[]): pino.Logger {
  return pino({ level: 'warn' }, { write: (line: string) => void failures.push((JSON.parse(line) as { err?: { message: string } }).err?.message ?? '') });
}

/** A consumer of the test slot, started, whose warnings' error messages are kept in `failures`. */
function watchedConsumer(failures: string[], options: Partial<ReplicationConsumerOptions>, dispatcher: BatchDispatcher = new Dispatcher({ db, slotName: database.slotName, logger: silentLogger })) {
  const consumer = testConsumer(database, db, dispatcher, { logger: failureLogger(failures), ...options });
  consumer.start();
  return consumer;
}

describe('a replication connection the network drops without a word', () => {
  it('is given up once nothing has arrived for the silence limit, and streaming starts again', async () => {
    const proxy = await startProxy(database.url);
    const failures: string[] = [];
    const consumer = watchedConsumer(failures, {
      // The server ends its side 1 s after the client went silent, as a network drop would have it do.
      connection: { connectionString: proxy.url, options: '-c wal_sender_timeout=1000' },
      // The lock's connection, silent too, is given up after 5 s (three heartbeats, at least 5 s): after the stream.
      heartbeatMs: 1_000,
      silenceLimitMs: 1_500,
    });
    try {
      await waitFor('the consumer to stream', () => consumer.status.state === 'streaming');
      proxy.silence();
      await waitFor('the silent session to be given up', () => failures.some((message) => message.includes('nothing arrived on the replication connection for 1.5 s')), { timeoutMs: 10_000 });
      await waitFor('streaming again', () => consumer.status.state === 'streaming', { timeoutMs: 10_000 });
      const id = await emit(db, { type: 'network.back', payload: {} });
      await waitFor('the event to be recorded', async () => (await db.selectFrom('walflow.events').select('id').where('id', '=', id).executeTakeFirst()) !== undefined);
    } finally {
      await consumer.stop();
      await proxy.close();
    }
  });

  it("without a limit of its own, gives up after twice the server's wal_sender_timeout (or three heartbeats, if longer)", async () => {
    // The server's setting for this database, as the consumer reads it; the walsender's own follows it too.
    await sql`ALTER DATABASE ${sql.id(database.name)} SET wal_sender_timeout = '2s'`.execute(db);
    const reading = createDatabase(database.url, silentLogger);
    const proxy = await startProxy(database.url);
    const failures: string[] = [];
    const consumer = watchedConsumer(failures, { db: reading, connection: { connectionString: proxy.url }, heartbeatMs: 300 });
    try {
      await waitFor('the consumer to stream', () => consumer.status.state === 'streaming');
      proxy.silence();
      await waitFor('the silent session to be given up', () => failures.some((message) => message.includes('nothing arrived on the replication connection for 4 s')), { timeoutMs: 15_000 });
    } finally {
      await consumer.stop();
      await proxy.close();
      await reading.destroy();
      await sql`ALTER DATABASE ${sql.id(database.name)} RESET wal_sender_timeout`.execute(db);
    }
  });

  it('frees the leader lock of a leader cut off, so that a standby takes over', async () => {
    const proxy = await startProxy(database.url);
    // Its stream is not given up for silence here: the lock alone must make it step down.
    const leader = watchedConsumer([], { connection: { connectionString: proxy.url, options: '-c wal_sender_timeout=1000' }, heartbeatMs: 300, silenceLimitMs: 60_000 });
    const running: ReplicationConsumer[] = [leader];
    try {
      await waitFor('the leader to stream', () => leader.status.state === 'streaming');
      const standby = watchedConsumer([], { heartbeatMs: 300, standbyPollMs: 100 });
      running.push(standby);
      await waitFor('the other to stand by', () => standby.status.state === 'standby');
      // Silent both ways, closing nothing: the server's end of the lock's connection would wait for ever.
      proxy.partition();
      await waitFor('the standby to take over', () => standby.status.state === 'streaming', { timeoutMs: 20_000 });
      const id = await emit(db, { type: 'leader.cut_off', payload: {} });
      await waitFor('the event to be recorded', async () => (await db.selectFrom('walflow.events').select('id').where('id', '=', id).executeTakeFirst()) !== undefined);
      // The leader cut off gave the lock up too, on its own side.
      await waitFor('the cut-off leader to step down', () => leader.status.role === 'standby', { timeoutMs: 10_000 });
    } finally {
      for (const consumer of running.reverse()) await consumer.stop();
      await proxy.close();
    }
  });

  it('is not given up while the stream waits for its own batches', async () => {
    // A dispatcher slower than the silence limit: the stream is held back, not silent.
    const failures: string[] = [];
    const inner = new Dispatcher({ db, slotName: database.slotName, logger: silentLogger });
    let slow = true;
    const consumer = watchedConsumer(
      failures,
      { heartbeatMs: 200, silenceLimitMs: 1_000, maxBatchRows: 1, batchesInFlight: 1 },
      { dispatch: async (batch) => (slow ? new Promise((resolve) => setTimeout(resolve, 2_500)).then(() => inner.dispatch(batch)) : inner.dispatch(batch)) },
    );
    try {
      await waitFor('the consumer to stream', () => consumer.status.state === 'streaming');
      // Two transactions: the second waits for the first's batch, holding the stream back for 2.5 s.
      for (let n = 0; n < 2; n++) await emit(db, { type: 'batch.slow', payload: { n } });
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      expect(failures).toEqual([]);
      expect(consumer.status.state).toBe('streaming');
      slow = false;
    } finally {
      await consumer.stop();
    }
  });

  it('is not given up while the server still streams the slot to it, however quiet', async () => {
    // No keepalives (the server's timeout is off) and no heartbeat: nothing arrives, and nothing is wrong.
    const failures: string[] = [];
    const consumer = watchedConsumer(failures, {
      connection: { connectionString: database.url, options: '-c wal_sender_timeout=0' },
      heartbeatMs: 3_600_000,
      silenceLimitMs: 500,
    });
    try {
      await waitFor('the consumer to stream', () => consumer.status.state === 'streaming');
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      expect(failures).toEqual([]);
      expect(consumer.status.state).toBe('streaming');
    } finally {
      await consumer.stop();
    }
  });
});
