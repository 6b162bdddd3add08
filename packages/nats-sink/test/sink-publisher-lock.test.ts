import { setTimeout as sleep } from 'node:timers/promises';
import { NatsSink, sinkName, type NatsSinkSettings } from '@walflow/nats-sink';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { openMigrated, silentLogger } from '../../server/test/fixtures.js';
import { ensurePublisherRow, tryLockSink } from '../src/sink-cursor.js';

const database = useTestDatabase();

it('is a lock an application role can neither take nor hold against the sink', async () => {
  const db = await openMigrated(database);
  // Never reached: the sink that leads connects and fails; one in standby never tries.
  const settings: NatsSinkSettings = { servers: ['nats://127.0.0.1:1'], subject: 'walflow.{tenant}.{type}', stream: 'HELD', maxAgeSeconds: 60, duplicateWindowSeconds: 60 };
  const intruder = `${database.slotName}_app`;
  await sql`CREATE ROLE ${sql.id(intruder)} IN ROLE walflow_app`.execute(db);
  const sink = new NatsSink({ db, settings, logger: silentLogger, pollMs: 50, retry: { initialMs: 50, maxMs: 50 } });
  try {
    await db.connection().execute(async (session) => {
      // The key the publisher lock was before 0045, held by the application's session.
      await sql`SET ROLE ${sql.id(intruder)}`.execute(session);
      await sql`SELECT pg_advisory_lock(30579, hashtext(${sinkName(settings)}))`.execute(session);
      sink.start();
      const status = await waitFor('the sink to lead and try NATS', () => sink.status.state !== 'starting' && sink.status.state !== 'publishing' && sink.status);
      expect(status.state).toBe('failing');

      // Nor can it take the lock that replaced the key.
      await expect(sql`SELECT sink FROM walflow.sink_publishers FOR UPDATE`.execute(session)).rejects.toMatchObject({ code: '42501' });
      await sql`SELECT pg_advisory_unlock_all()`.execute(session);
      await sql`RESET ROLE`.execute(session);
    });
  } finally {
    await sink.stop();
    await sql`DROP ROLE ${sql.id(intruder)}`.execute(db);
    await db.destroy();
  }
});

it('is given up, as the server ends the session, by a round that waits longer than its idle limit between statements', async () => {
  const db = await openMigrated(database);
  const sink = 'nats:IDLE';
  await ensurePublisherRow(db, sink);
  try {
    // A round frozen between its statements (its process stopped, paused or cut off) for longer than its limit.
    const frozen = db.transaction().execute(async (trx) => {
      expect(await tryLockSink(trx, sink, 300)).toBe(true);
      await sleep(2000);
      await sql`SELECT 1`.execute(trx);
    });
    await expect(frozen).rejects.toThrow();
    await db.transaction().execute(async (trx) => expect(await tryLockSink(trx, sink, 60_000)).toBe(true));
  } finally {
    await db.destroy();
  }
});
