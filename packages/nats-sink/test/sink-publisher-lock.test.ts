import { createServer, type AddressInfo, type Socket } from 'node:net';
import { NatsSink, sinkName, type NatsSinkSettings } from '@walflow/nats-sink';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { openMigrated, silentLogger } from '../../server/test/fixtures.js';

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

it('is given up by a round that waits on NATS past its idle limit, as by a process frozen mid-round, so a standby can lead', async () => {
  const db = await openMigrated(database);
  // Accepts the connection and never sends INFO: the round waits in its transaction for the connect timeout (20 s).
  const sockets: Socket[] = [];
  const silent = createServer((socket) => void sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
  const accepted = new Promise<void>((resolve) => silent.once('connection', () => resolve()));
  const port = (silent.address() as AddressInfo).port;
  const settings: NatsSinkSettings = { servers: [`nats://127.0.0.1:${port}`], subject: 'walflow.{tenant}.{type}', stream: 'FROZEN', maxAgeSeconds: 60, duplicateWindowSeconds: 60 };
  const sink = new NatsSink({ db, settings, logger: silentLogger, pollMs: 50, roundIdleLimitMs: 500 });
  const lockable = async () => {
    const { rows } = await sql`SELECT sink FROM walflow.sink_publishers WHERE sink = ${sinkName(settings)} FOR UPDATE SKIP LOCKED`.execute(db);
    return rows.length === 1;
  };
  try {
    // The first round registers the sink's cursor; the next one takes the lock and connects.
    sink.start();
    await accepted;
    expect(await lockable()).toBe(false);
    // Long before the connect gives up, the server has ended the waiting round's session.
    await waitFor('the publisher lock to be free', lockable, { timeoutMs: 5000 });
  } finally {
    await sink.stop();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
    await db.destroy();
  }
});
