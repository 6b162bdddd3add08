import { RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { uuidV7, type WalflowDatabase } from '@walflow/core';
import { JetStreamPublisher, measureSinkLag, NatsSink, sinkName, type NatsSinkSettings } from '@walflow/nats-sink';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keptWarnings, openMigrated, silentLogger } from '../../server/test/fixtures.js';
import { registerCursor, savedCursor } from '../src/sink-cursor.js';
import { startNatsServer, type TestNatsServer } from './nats-server.js';
import { streamContents, streamSize, withJetStream } from './stream-contents.js';

/** What the sink leaves in its stream: a prefix of the log in recording order, in a stream of the configured limits. */
const database = useTestDatabase();
let nats: TestNatsServer;
let db: Kysely<WalflowDatabase>;

beforeAll(async () => {
  nats = await startNatsServer();
  db = await openMigrated(database);
});
afterAll(async () => {
  await db?.destroy();
  await nats?.dispose();
});

const settingsOf = (stream: string, subject: string): NatsSinkSettings => ({ servers: [nats.url], subject, stream, maxAgeSeconds: 3600, duplicateWindowSeconds: 600 });

/** Events of these tenants recorded in one transaction, in this order, after the sink's cursor. */
async function recordEvents(tenants: string[]): Promise<string[]> {
  const ids = tenants.map(() => uuidV7());
  await db.transaction().execute(async (trx) => {
    for (const [position, tenant] of tenants.entries()) {
      await sql`INSERT INTO walflow.events (id, event_type, tenant_id, payload, metadata, committed_at, commit_lsn, tx_position, xid, recorded_xid)
                VALUES (${ids[position]}::uuid, 'sink.stored', ${tenant}, '{}', '{}', now(), '0/1', ${position}, 1, pg_current_xact_id())`.execute(trx);
    }
  });
  return ids;
}

describe('a round whose stream refuses one of its messages', () => {
  it('stores only the messages before it, saves its cursor there, and publishes the rest in order once the stream takes them', async () => {
    const stream = 'PARTIAL';
    await withJetStream(nats.url, (manager) => manager.streams.add({ name: stream, subjects: ['partial.good.>'], storage: StorageType.Memory, retention: RetentionPolicy.Limits }));
    const settings = settingsOf(stream, 'partial.{tenant}.{type}');
    await db.transaction().execute((trx) => registerCursor(trx, sinkName(settings)));
    // The second goes to a subject the stream does not capture: it is refused, and the third, sent with it, must not
    // be stored ahead of it.
    const ids = await recordEvents(['good', 'bad', 'good']);
    const sink = new NatsSink({ db, settings, logger: silentLogger, pollMs: 50, retry: { initialMs: 50, maxMs: 200 } });
    sink.start();
    try {
      await waitFor('the sink to fail on the refused event', () => sink.status.state === 'failing' && sink.status.reason?.includes(ids[1]!));
      expect((await streamContents(nats.url, stream)).map((stored) => stored.cloudEvent.id)).toEqual([ids[0]]);
      expect((await savedCursor(db, sinkName(settings)))?.eventId).toBe(ids[0]);

      await withJetStream(nats.url, (manager) => manager.streams.update(stream, { subjects: ['partial.>'] }));
      await waitFor('the rest to be stored', async () => (await streamSize(nats.url, stream)) === 3);
      expect((await streamContents(nats.url, stream)).map((stored) => stored.cloudEvent.id)).toEqual(ids);
      await waitFor('the cursor past the last', async () => (await measureSinkLag(db, sinkName(settings)))?.pending === 0);
      // Caught up, its rounds read nothing: no event after the cursor is its own cursor's event again.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(sink.status).toMatchObject({ state: 'publishing', published: 3, duplicates: 0 });
    } finally {
      await sink.stop();
    }
  });
});

describe('a sink whose publisher row was deleted while it ran', () => {
  it('makes the row again and goes on publishing, rather than stand by for ever', async () => {
    const settings = settingsOf('REMADE', 'remade.{tenant}.{type}');
    await db.transaction().execute((trx) => registerCursor(trx, sinkName(settings)));
    const sink = new NatsSink({ db, settings, logger: silentLogger, pollMs: 50, retry: { initialMs: 50, maxMs: 200 } });
    sink.start();
    try {
      await waitFor('the sink to publish', () => sink.status.state === 'publishing');
      await sql`DELETE FROM walflow.sink_publishers WHERE sink = ${sinkName(settings)}`.execute(db);
      const ids = await recordEvents(['remade', 'remade']);
      await waitFor('both events to be stored', async () => (await streamSize(nats.url, 'REMADE')) === 2);
      expect((await streamContents(nats.url, 'REMADE')).map((stored) => stored.cloudEvent.id)).toEqual(ids);
      expect(sink.status.state).toBe('publishing');
    } finally {
      await sink.stop();
    }
  });
});

describe('the stream of a sink', () => {
  it('is created with the configured age and duplicate window; one that exists with a shorter window is used as it is, with a warning', async () => {
    const created = settingsOf('CREATED', 'created.{tenant}.{type}');
    const publisher = await JetStreamPublisher.connect(created, silentLogger);
    await publisher.close();
    const { config } = await withJetStream(nats.url, (manager) => manager.streams.info('CREATED'));
    expect(config).toMatchObject({ subjects: ['created.>'], max_age: 3600 * 1e9, duplicate_window: 600 * 1e9 });

    await withJetStream(nats.url, (manager) =>
      manager.streams.add({ name: 'SHORT', subjects: ['short.>'], storage: StorageType.Memory, retention: RetentionPolicy.Limits, duplicate_window: 60 * 1e9 }),
    );
    const { logger, warnings } = keptWarnings();
    const existing = await JetStreamPublisher.connect(settingsOf('SHORT', 'short.{tenant}.{type}'), logger);
    await existing.close();
    expect(warnings).toContain('the JetStream stream has a shorter duplicate window than configured; walflow does not change an existing stream');
    expect((await withJetStream(nats.url, (manager) => manager.streams.info('SHORT'))).config.duplicate_window).toBe(60 * 1e9);
  });
});
