import { NatsSink, sinkName, type NatsSinkSettings } from '@walflow/nats-sink';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { openMigrated, silentLogger } from '../../server/test/fixtures.js';

const database = useTestDatabase();

it('refuses to publish from a cursor carried over from another cluster, whose transaction id lies beyond this one', async () => {
  const db = await openMigrated(database);
  // Never reached: the cursor is refused before the sink connects.
  const settings: NatsSinkSettings = { servers: ['nats://127.0.0.1:1'], subject: 'walflow.{tenant}.{type}', stream: 'MOVED', maxAgeSeconds: 60, duplicateWindowSeconds: 60 };
  await sql`INSERT INTO walflow.sink_cursors (sink, recorded_xid, commit_lsn, tx_position, event_id)
            VALUES (${sinkName(settings)}, '40000000000', '0/0', 0, gen_random_uuid())`.execute(db);
  const sink = new NatsSink({ db, settings, logger: silentLogger, pollMs: 50, retry: { initialMs: 50, maxMs: 50 } });
  try {
    sink.start();
    const status = await waitFor('the sink to refuse its cursor', () => sink.status.state === 'failing' && sink.status);
    expect(status.reason).toMatch(/cursor \(transaction 40000000000\) lies beyond this cluster's transaction ids/);
  } finally {
    await sink.stop();
    await db.destroy();
  }
});
