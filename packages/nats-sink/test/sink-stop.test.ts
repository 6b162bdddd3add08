import { setTimeout as sleep } from 'node:timers/promises';
import { NatsSink, sinkName, type NatsSinkSettings } from '@walflow/nats-sink';
import { useTestDatabase } from '@walflow/testing';
import { expect, it } from 'vitest';
import { openMigrated, silentLogger } from '../../server/test/fixtures.js';
import { tryLockSink } from '../src/sink-cursor.js';

const database = useTestDatabase();

it('stops during a round without first waiting out the poll that follows it', async () => {
  const db = await openMigrated(database);
  // Never reached: a sink whose lock another publisher holds publishes nothing.
  const settings: NatsSinkSettings = { servers: ['nats://127.0.0.1:1'], subject: 'walflow.{tenant}.{type}', stream: 'STOP', maxAgeSeconds: 60, duplicateWindowSeconds: 60 };
  let release!: () => void;
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const otherPublisher = db.transaction().execute(async (trx) => {
    expect(await tryLockSink(trx, sinkName(settings))).toBe(true);
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
