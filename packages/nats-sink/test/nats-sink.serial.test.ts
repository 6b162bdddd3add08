import { setTimeout as sleep } from 'node:timers/promises';
import { emit } from '@walflow/outbox';
import { measureSinkLag, NatsSink, sinkName, type NatsSinkSettings, type SinkState } from '@walflow/nats-sink';
import type { HealthReport, RunningWalflow } from '@walflow/server';
import { createTestDatabase, startPostgres, waitFor, type CreatedTestDatabase, type StartedPostgres } from '@walflow/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, startTestWalflow } from '../../server/test/fixtures.js';
import { expectPublishedOnceInCommitOrder, publishedFor } from './expect-published.js';
import { startNatsServer, type TestNatsServer } from './nats-server.js';
import { streamSize } from './stream-contents.js';
import { writeEvents } from './write-events.js';

// A cluster of its own: the sink waits for the cluster-wide oldest running transaction, so transactions of
// other test files sharing a cluster would hold it back.
let cluster: StartedPostgres;
let database: CreatedTestDatabase;
let nats: TestNatsServer;
let walflow: RunningWalflow;

const STREAM = 'WALFLOW_TEST';
/** The NATS server's max_payload: small, so that an event can be larger than NATS takes. */
const MAX_PAYLOAD = 64 * 1024;
const SLOT = 'walflow_sink';
const settings = (overrides: Partial<NatsSinkSettings> = {}): NatsSinkSettings => ({
  servers: [nats.url],
  subject: 'walflow.{tenant}.{type}',
  stream: STREAM,
  maxAgeSeconds: 3600,
  duplicateWindowSeconds: 600,
  ...overrides,
});

beforeAll(async () => {
  cluster = await startPostgres({ dedicated: true });
  database = await createTestDatabase(cluster.url);
  nats = await startNatsServer({ maxPayload: MAX_PAYLOAD });
  walflow = await startTestWalflow(database.url, SLOT, { natsSink: settings() });
});
afterAll(async () => {
  await walflow?.stop();
  await database?.drop();
  await cluster?.stop();
  await nats?.dispose();
});

async function health(): Promise<HealthReport> {
  const response = await fetch(`http://127.0.0.1:${walflow.httpPort}/health`);
  return (await response.json()) as HealthReport;
}

/** The size of an event's payload as the log prints it, which is what the sink publishes. */
async function payloadBytes(id: string): Promise<number> {
  const { rows } = await sql<{ bytes: number }>`SELECT octet_length(payload::text) AS bytes FROM walflow.events WHERE id = ${id}`.execute(walflow.db);
  return rows[0]!.bytes;
}

function sinkCheck(report: HealthReport) {
  return report.checks.find((check) => check.name === 'sink');
}

describe('the JetStream sink', () => {
  it('publishes every event once, in commit order, as a CloudEvent named by its event id', async () => {
    const committed = await writeEvents(walflow.db, { tenant: 'order', transactions: 25, perTransaction: 4, writers: 4 });
    const published = await expectPublishedOnceInCommitOrder(walflow.db, { url: nats.url, stream: STREAM }, 'order', committed);

    const first = published[0]!;
    const { rows } = await sql<{ committed_at: string; aggregate_id: string; payload: unknown }>`
      SELECT to_json(committed_at) #>> '{}' AS committed_at, aggregate_id, payload
        FROM walflow.events WHERE id = ${first.cloudEvent.id}`.execute(walflow.db);
    const row = rows[0]!;
    expect(first).toMatchObject({ subject: 'walflow.order.policy.approved', contentType: 'application/cloudevents+json' });
    expect(first.cloudEvent).toEqual({
      specversion: '1.0',
      id: first.cloudEvent.id,
      source: 'walflow/order',
      type: 'policy.approved',
      time: row.committed_at,
      subject: `policy/${row.aggregate_id}`,
      datacontenttype: 'application/json',
      data: row.payload,
      tenant: 'order',
    });

    await waitFor('the health report to show the sink caught up', async () => {
      const report = await health();
      return report.sink?.pending === 0 && sinkCheck(report)?.state === 'ok' && report;
    });
  });

  it('publishes a second event under an id used before, once the first was recorded, as a message of its own', async () => {
    const [id] = await writeEvents(walflow.db, { tenant: 'reused', transactions: 1, perTransaction: 1 });
    await waitFor('the first event to be published', async () => (await publishedFor(nats.url, STREAM, 'reused')).length === 1);
    await waitFor('its outbox row to be gone', async () => (await sql`SELECT 1 FROM walflow.outbox WHERE id = ${id}`.execute(walflow.db)).rows.length === 0);
    await sql`INSERT INTO walflow.outbox (id, tenant_id, event_type, payload) VALUES (${id}, 'reused', 'policy.approved', '{"second": true}')`.execute(walflow.db);

    const published = await waitFor('the second event to be published', async () => {
      const messages = await publishedFor(nats.url, STREAM, 'reused');
      return messages.length === 2 && messages;
    });
    expect(published.map((message) => message.cloudEvent.id)).toEqual([id, id]);
    expect(published[1]!.cloudEvent.data).toEqual({ second: true });
  });

  it('publishes an event larger than NATS takes without its data, saying how large it was, and goes on with the next', async () => {
    const large = { blob: 'x'.repeat(2 * MAX_PAYLOAD) };
    const ids: string[] = [];
    for (const payload of [{ n: 1 }, large, { n: 3 }]) ids.push(await walflow.db.transaction().execute((trx) => emit(trx, { type: 'policy.approved', tenantId: 'large', payload })));
    const published = await waitFor('the three events', async () => {
      const messages = await publishedFor(nats.url, STREAM, 'large');
      return messages.length === 3 && messages;
    });
    expect(published.map((message) => message.cloudEvent.id)).toEqual(ids);
    expect(published[1]!.cloudEvent).not.toHaveProperty('data');
    expect(published[1]!.cloudEvent).toMatchObject({ id: ids[1], omitteddatabytes: await payloadBytes(ids[1]!) });
    expect(published[2]!.cloudEvent).toMatchObject({ data: { n: 3 } });

    // Too large without its data too (an actor id as long as metadata may be): its metadata's extensions go as well.
    const actorId = 'a'.repeat(2 * MAX_PAYLOAD);
    const [longActor, after] = [
      await walflow.db.transaction().execute((trx) => emit(trx, { type: 'policy.approved', tenantId: 'large', payload: { n: 4 }, actorId })),
      await walflow.db.transaction().execute((trx) => emit(trx, { type: 'policy.approved', tenantId: 'large', payload: { n: 5 } })),
    ];
    const later = await waitFor('the two events after', async () => {
      const messages = await publishedFor(nats.url, STREAM, 'large');
      return messages.length === 5 && messages.slice(3);
    });
    expect(later.map((message) => message.cloudEvent.id)).toEqual([longActor, after]);
    expect(later[0]!.cloudEvent).toMatchObject({ id: longActor, tenant: 'large', omitteddatabytes: await payloadBytes(longActor), omittedextensions: true });
    expect(later[0]!.cloudEvent).not.toHaveProperty('actorid');
  });

  it('keeps events through a NATS outage: the health check fails meanwhile, the slot moves on, nothing is lost or doubled', async () => {
    const writing = writeEvents(walflow.db, { tenant: 'outage', transactions: 60, perTransaction: 3, writers: 2, pauseMs: 25 });
    await waitFor('some events to be published', async () => (await publishedFor(nats.url, STREAM, 'outage')).length > 20);
    await nats.stop();

    const failing = await waitFor('the sink check to fail', async () => {
      const report = await health();
      const check = sinkCheck(report);
      return check?.state === 'degraded' && check.message.includes('failing') && (report.sink?.pending ?? 0) > 0 && report;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    expect(failing.sink?.state).toBe('failing');
    // The slot does not wait for NATS: what was recorded meanwhile is acknowledged.
    await waitFor('the slot to confirm events recorded during the outage', async () => {
      const { rows } = await sql<{ confirmed: boolean }>`
        SELECT s.confirmed_flush_lsn > (SELECT max(commit_lsn) FROM walflow.events WHERE tenant_id = 'outage') AS confirmed
          FROM pg_replication_slots s WHERE s.slot_name = ${SLOT}`.execute(walflow.db);
      return rows[0]?.confirmed === true;
    });

    await nats.start();
    const committed = await writing;
    await expectPublishedOnceInCommitOrder(walflow.db, { url: nats.url, stream: STREAM }, 'outage', committed);
    await waitFor('the sink check to recover', async () => sinkCheck(await health())?.state === 'ok');
  });

  it('started for the first time while NATS is down, publishes what is recorded meanwhile once NATS is back', async () => {
    await nats.stop();
    const first = new NatsSink({ db: walflow.db, settings: settings({ stream: 'FIRST', subject: 'first.{tenant}.{type}' }), logger: silentLogger, pollMs: 20 });
    first.start();
    try {
      await waitFor('the new sink to fail for want of NATS', () => first.status.state === 'failing');
      const committed = await writeEvents(walflow.db, { tenant: 'first-start', transactions: 10, perTransaction: 2, writers: 1 });
      await nats.start();
      await expectPublishedOnceInCommitOrder(walflow.db, { url: nats.url, stream: 'FIRST' }, 'first-start', committed);
    } finally {
      await first.stop();
    }
  });

  it('never skips an event whose recording transaction is still open, however old its commit time', async () => {
    // Like `walflow repair` recording a missed outbox row, or a dispatcher that lost its lock and commits late.
    const lateId = '00000000-0000-4000-8000-00000000a1a1';
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let markInserted!: () => void;
    const inserted = new Promise<void>((resolve) => (markInserted = resolve));
    const late = walflow.db.transaction().execute(async (trx) => {
      await sql`INSERT INTO walflow.events (id, event_type, tenant_id, aggregate_type, aggregate_id, payload, committed_at, commit_lsn, tx_position, xid)
                VALUES (${lateId}, 'policy.approved', 'late', 'policy', 'p0', '{}', now() - interval '1 hour', '0/1', 0, 1)`.execute(trx);
      markInserted();
      await released;
    });
    await inserted;
    let later: string[];
    try {
      later = await writeEvents(walflow.db, { tenant: 'late', transactions: 5, perTransaction: 2 });
      await waitFor('the later events to be recorded', async () => (await measureSinkLag(walflow.db, sinkName(settings())))?.pending === later.length);
      // Rounds go on meanwhile (every recorded batch wakes the sink); none may move past the open transaction.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(await publishedFor(nats.url, STREAM, 'late')).toEqual([]);
    } finally {
      release();
      await late;
    }
    await expectPublishedOnceInCommitOrder(walflow.db, { url: nats.url, stream: STREAM }, 'late', [lateId, ...later]);
  });

  it('publishes a round again when its cursor save fails, and JetStream drops the repeats by Nats-Msg-Id', async () => {
    const resave = settings({ stream: 'RESAVE', subject: 'resave.{tenant}.{type}' });
    const sinkOf = () => new NatsSink({ db: walflow.db, settings: resave, logger: silentLogger, pollMs: 50, retry: { initialMs: 50, maxMs: 200 } });
    // The first sink only places the cursor; the events are recorded while no sink runs, so the next sink's first
    // round holds all of them (a round stops at the first message the stream refuses as out of order).
    const placing = sinkOf();
    placing.start();
    await waitFor('the new sink’s cursor', () => measureSinkLag(walflow.db, sinkName(resave)));
    await placing.stop();
    await sql`CREATE FUNCTION public.refuse_cursor_save() RETURNS trigger LANGUAGE plpgsql AS $$
              BEGIN RAISE EXCEPTION 'cursor save refused'; END $$`.execute(walflow.db);
    await sql`CREATE TRIGGER refuse_cursor_save BEFORE UPDATE ON walflow.sink_cursors FOR EACH ROW
              WHEN (OLD.sink = 'nats:RESAVE') EXECUTE FUNCTION public.refuse_cursor_save()`.execute(walflow.db);
    const committed = await writeEvents(walflow.db, { tenant: 'resave', transactions: 10, perTransaction: 3 });
    await waitFor('walflow to record every event', async () => (await measureSinkLag(walflow.db, sinkName(resave)))?.pending === committed.length);

    const sink = sinkOf();
    sink.start();
    try {
      // Every event stored once; then at least one more whole round of them published again and dropped.
      await waitFor('every event to be stored', async () => (await streamSize(nats.url, 'RESAVE')) === committed.length);
      const droppedBefore = sink.status.duplicates;
      await waitFor('the round to be published again and dropped', () => sink.status.state === 'failing' && sink.status.duplicates >= droppedBefore + committed.length);
      expect(sink.status.reason).toMatch(/cursor save refused/);
      expect(await streamSize(nats.url, 'RESAVE')).toBe(committed.length);

      await sql`DROP TRIGGER refuse_cursor_save ON walflow.sink_cursors`.execute(walflow.db);
      await waitFor('the cursor to be saved', async () => (await measureSinkLag(walflow.db, sinkName(resave)))?.pending === 0);
      await expectPublishedOnceInCommitOrder(walflow.db, { url: nats.url, stream: 'RESAVE' }, 'resave', committed);
      expect(sink.status.state).toBe('publishing');
    } finally {
      await sink.stop();
    }
  });

  it('lets one process publish at a time: two sinks of one stream still store every event once, in commit order', async () => {
    const pair = settings({ stream: 'PAIR', subject: 'pair.{tenant}.{type}' });
    const sinks = [0, 1].map(() => new NatsSink({ db: walflow.db, settings: pair, logger: silentLogger, pollMs: 20, batchSize: 20 }));
    const seen = new Set<SinkState>();
    const watch = setInterval(() => sinks.forEach((sink) => seen.add(sink.status.state)), 5);
    for (const sink of sinks) sink.start();
    try {
      await waitFor('both sinks to run', () => sinks.every((sink) => sink.status.state !== 'starting'));
      const committed = await writeEvents(walflow.db, { tenant: 'pair', transactions: 40, perTransaction: 5, writers: 2, pauseMs: 5 });
      await expectPublishedOnceInCommitOrder(walflow.db, { url: nats.url, stream: 'PAIR' }, 'pair', committed);
      expect(seen.has('standby')).toBe(true);
      expect(sinks[0]!.status.published + sinks[1]!.status.published).toBeGreaterThanOrEqual(committed.length);
    } finally {
      clearInterval(watch);
      await Promise.all(sinks.map((sink) => sink.stop()));
    }
  });

  it('lets a standby lead once a round has waited past its idle limit on a NATS that stopped answering', async () => {
    const frozen = settings({ stream: 'FROZEN', subject: 'frozen.{tenant}.{type}' });
    const sink = new NatsSink({ db: walflow.db, settings: frozen, logger: silentLogger, pollMs: 50, roundIdleLimitMs: 1000 });
    const lockable = async (): Promise<boolean> =>
      (await sql`SELECT sink FROM walflow.sink_publishers WHERE sink = ${sinkName(frozen)} FOR UPDATE SKIP LOCKED`.execute(walflow.db)).rows.length === 1;
    sink.start();
    try {
      await waitFor('the sink to register', () => measureSinkLag(walflow.db, sinkName(frozen)));
      const first = await writeEvents(walflow.db, { tenant: 'frozen', transactions: 2, perTransaction: 2 });
      await waitFor('the sink to publish', () => sink.status.published >= first.length);
      nats.pause();
      try {
        await writeEvents(walflow.db, { tenant: 'frozen', transactions: 1, perTransaction: 2 });
        await waitFor('the events to be recorded', async () => (await measureSinkLag(walflow.db, sinkName(frozen)))?.pending === 2);
        // The round that publishes them waits for acknowledgements that do not come (5 s each): held, not the few
        // milliseconds of an idle round…
        const heldTwice = async (): Promise<boolean> => !(await lockable()) && (await sleep(300).then(lockable)) === false;
        await waitFor('a round to hold the lock', heldTwice, { intervalMs: 20 });
        // …until the server ends its transaction, idle for a second: long before the acknowledgements time out.
        await waitFor('the lock to be free', lockable, { timeoutMs: 3500, intervalMs: 50 });
      } finally {
        nats.resume();
      }
    } finally {
      await sink.stop();
    }
  });
});
