import { createServer, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { NatsSink, type NatsSinkSettings } from '@walflow/nats-sink';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { expect, it } from 'vitest';
import { openMigrated, silentLogger } from '../../server/test/fixtures.js';

const database = useTestDatabase();

/** A server that takes each connection and closes it at once, so every connect fails; it counts the connections. */
async function closingServer(): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `nats://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

it('waits out its backoff while NATS is down however many events are recorded meanwhile, and says since when it fails', async () => {
  const db = await openMigrated(database);
  const closing = await closingServer();
  const settings: NatsSinkSettings = { servers: [closing.url], subject: 'walflow.{tenant}.{type}', stream: 'DOWN', maxAgeSeconds: 60, duplicateWindowSeconds: 60 };
  const sink = new NatsSink({ db, settings, logger: silentLogger, pollMs: 50, retry: { initialMs: 1500, maxMs: 1500 } });
  try {
    sink.start();
    const failing = await waitFor('the sink to fail', () => sink.status.state === 'failing' && sink.status);
    // The connections one round makes (the client may try more than once).
    const perRound = closing.connections();
    // What dispatch does for every batch it records.
    for (let i = 0; i < 100; i++) {
      sink.notify();
      await sleep(20);
    }
    // One round per backoff, not one per notification. The backoff is fully jittered (0 to 1.5 s, 0.75 s on average),
    // so some four rounds fit in these two seconds; a quarter of the notifications leaves room for a run of short draws.
    expect(closing.connections() - perRound).toBeLessThan((100 / 4) * perRound);
    expect(sink.status).toMatchObject({ state: 'failing', since: failing.since });
  } finally {
    await sink.stop();
    await closing.close();
    await db.destroy();
  }
});

it('doubles its backoff after each failed round in a row', async () => {
  const db = await openMigrated(database);
  const closing = await closingServer();
  const settings: NatsSinkSettings = { servers: [closing.url], subject: 'walflow.{tenant}.{type}', stream: 'GROWING', maxAgeSeconds: 60, duplicateWindowSeconds: 60 };
  // Jittered from 0 to 50 ms, 100, 200, … after each failure: some seven rounds in three seconds. A backoff that did
  // not grow would wait 25 ms on average, some hundred rounds.
  const sink = new NatsSink({ db, settings, logger: silentLogger, pollMs: 50, retry: { initialMs: 50, maxMs: 60_000 } });
  try {
    sink.start();
    await waitFor('the sink to fail', () => sink.status.state === 'failing');
    const perRound = closing.connections();
    await sleep(3000);
    expect(closing.connections() / perRound).toBeLessThan(25);
  } finally {
    await sink.stop();
    await closing.close();
    await db.destroy();
  }
});

it('names the servers it cannot reach without their credentials: the reason is shown by /health, which needs no login', async () => {
  const db = await openMigrated(database);
  const closing = await closingServer();
  const servers = [closing.url.replace('nats://', 'nats://walflow:s3cret@'), closing.url.replace('nats://', 'nats://t0ken@')];
  const settings: NatsSinkSettings = { servers, subject: 'walflow.{tenant}.{type}', stream: 'SECRET', maxAgeSeconds: 60, duplicateWindowSeconds: 60 };
  const sink = new NatsSink({ db, settings, logger: silentLogger, pollMs: 50, retry: { initialMs: 200, maxMs: 200 } });
  try {
    sink.start();
    const { reason } = await waitFor('the sink to fail', () => sink.status.state === 'failing' && sink.status);
    expect(reason).toContain(closing.url);
    expect(reason).not.toMatch(/s3cret|t0ken|walflow@/);
  } finally {
    await sink.stop();
    await closing.close();
    await db.destroy();
  }
});
