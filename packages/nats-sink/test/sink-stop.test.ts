import { setTimeout as sleep } from 'node:timers/promises';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { NatsSink, sinkName, type NatsSinkSettings } from '@walflow/nats-sink';
import { useTestDatabase } from '@walflow/testing';
import { expect, it } from 'vitest';
import { keptWarnings, openMigrated, silentLogger } from '../../server/test/fixtures.js';
import { ensurePublisherRow, tryLockSink } from '../src/sink-cursor.js';

const database = useTestDatabase();

it('stops during a round without first waiting out the poll that follows it', async () => {
  const db = await openMigrated(database);
  // Never reached: a sink whose lock another publisher holds publishes nothing.
  const settings: NatsSinkSettings = { servers: ['nats://127.0.0.1:1'], subject: 'walflow.{tenant}.{type}', stream: 'STOP', maxAgeSeconds: 60, duplicateWindowSeconds: 60 };
  let release!: () => void;
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  await ensurePublisherRow(db, sinkName(settings));
  const otherPublisher = db.transaction().execute(async (trx) => {
    expect(await tryLockSink(trx, sinkName(settings), 60_000)).toBe(true);
    locked();
    await new Promise<void>((resolve) => (release = resolve));
  });
  try {
    await isLocked;
    const sink = new NatsSink({ db, settings, logger: silentLogger, pollMs: 60_000 });
    // start() begins the first round at once: this stop comes while it runs, and it ends in standby.
    sink.start();
    const stopped = await Promise.race([sink.stop().then(() => 'stopped'), sleep(5000, 'still stopping')]);
    expect(stopped).toBe('stopped');
  } finally {
    release();
    await otherPublisher;
    await db.destroy();
  }
});

it('stops while it connects to a NATS server that does not answer, without waiting out the connect timeout', async () => {
  const db = await openMigrated(database);
  // Accepts the connection and never sends INFO: the client waits for its connect timeout (20 s).
  const sockets: Socket[] = [];
  const silent = createServer((socket) => void sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
  const accepted = new Promise<void>((resolve) => silent.once('connection', () => resolve()));
  const port = (silent.address() as AddressInfo).port;
  const settings: NatsSinkSettings = { servers: [`nats://127.0.0.1:${port}`], subject: 'walflow.{tenant}.{type}', stream: 'SILENT', maxAgeSeconds: 60, duplicateWindowSeconds: 60 };
  const { logger, warnings } = keptWarnings();
  const sink = new NatsSink({ db, settings, logger, pollMs: 50 });
  try {
    // The first round registers the sink's cursor; then the sink connects, between rounds.
    sink.start();
    await accepted;
    const stopped = await Promise.race([sink.stop().then(() => 'stopped'), sleep(5000, 'still stopping')]);
    expect(stopped).toBe('stopped');
    expect(sink.status.state).toBe('stopped');
    expect(warnings).toEqual([]);
  } finally {
    await sink.stop();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
    await db.destroy();
  }
});
