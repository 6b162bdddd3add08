import { replayRange, type RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWalflow } from '../../cli/test/walflow-process.js';
import { silentLogger, startTestWalflow } from '../../server/test/fixtures.js';
import { expectPublishedOnceInCommitOrder } from './expect-published.js';
import { startNatsServer, type TestNatsServer } from './nats-server.js';
import { streamContents } from './stream-contents.js';
import { writeEvents } from './write-events.js';

const database = useTestDatabase();
let nats: TestNatsServer;
let walflow: RunningWalflow;
let env: Record<string, string>;

const STREAM = 'REPLAY_TEST';
const SUBJECT = 'replayed.{tenant}.{type}';

beforeAll(async () => {
  nats = await startNatsServer();
  walflow = await startTestWalflow(database.url, database.slotName, {
    natsSink: { servers: [nats.url], subject: SUBJECT, stream: STREAM, maxAgeSeconds: 3600, duplicateWindowSeconds: 600 },
  });
  env = { DATABASE_URL: database.url, WALFLOW_SLOT: database.slotName, WALFLOW_LOG_LEVEL: 'silent', WALFLOW_NATS_URL: nats.url, WALFLOW_NATS_STREAM: STREAM, WALFLOW_NATS_SUBJECT: SUBJECT };
});
afterAll(async () => {
  await walflow?.stop();
  await nats?.dispose();
});

interface SinkReplaySummary {
  replayId: string;
  events: number;
  runsQueued: number;
  sink: { stream: string; published: number; duplicates: number };
}

async function replayToSink(range: string[], extra: string[] = []): Promise<SinkReplaySummary> {
  const result = await runWalflow(['replay', ...range, '--tenant', 'replay', '--to-sink', '--json', ...extra], env);
  expect(result.code, result.output).toBe(0);
  return JSON.parse(result.stdout) as SinkReplaySummary;
}

describe('walflow replay --to-sink', () => {
  it('re-publishes a range in commit order with message ids that carry the replay id; the same replay twice adds nothing', async () => {
    const committed = await writeEvents(walflow.db, { tenant: 'replay', transactions: 6, perTransaction: 2, writers: 2 });
    const live = await expectPublishedOnceInCommitOrder(walflow.db, { url: nats.url, stream: STREAM }, 'replay', committed);
    // Absolute times: the derived replay id comes from the range, so the same range is the same replay.
    const range = ['--from', new Date(Date.now() - 10 * 60_000).toISOString(), '--to', new Date(Date.now() + 60_000).toISOString()];

    const first = await replayToSink(range);
    expect(first).toMatchObject({ events: committed.length, runsQueued: 0, sink: { stream: STREAM, published: committed.length, duplicates: 0 } });
    const replayed = (await streamContents(nats.url, STREAM)).filter((message) => message.cloudEvent.replayid === first.replayId);
    expect(replayed.map((message) => message.msgId)).toEqual(live.map((message) => `${message.cloudEvent.id}@${message.cloudEvent.time}:${first.replayId}`));
    expect(replayed.map((message) => message.cloudEvent)).toEqual(live.map((message) => ({ ...message.cloudEvent, replayid: first.replayId })));
    expect(replayed.map((message) => message.subject)).toEqual(live.map((message) => message.subject));

    const second = await replayToSink(range);
    expect(second).toMatchObject({ replayId: first.replayId, sink: { published: 0, duplicates: committed.length } });
    const again = await replayToSink(range, ['--again']);
    expect(again.replayId).not.toBe(first.replayId);
    expect(again.sink).toMatchObject({ published: committed.length, duplicates: 0 });
    expect(await streamContents(nats.url, STREAM)).toHaveLength(3 * committed.length);
  });

  it('publishes a payload as the log holds it, live and replayed: a decimal keeps digits a double would lose', async () => {
    const { rows } = await sql<{ id: string }>`
      SELECT walflow.emit('policy.priced', '{"premium": 1234.5678901234567890123}'::jsonb, tenant_id => 'exact') AS id`.execute(walflow.db);
    const id = rows[0]!.id;
    const published = async (replayed: boolean) => {
      const messages = (await streamContents(nats.url, STREAM)).filter((message) => message.cloudEvent.id === id && (message.cloudEvent.replayid !== undefined) === replayed);
      return messages.length === 1 ? messages[0] : undefined;
    };
    const live = await waitFor('the live message', () => published(false));
    expect(live.text).toContain('"data":{"premium": 1234.5678901234567890123}');
    const range = ['--from', new Date(Date.now() - 10 * 60_000).toISOString(), '--to', new Date(Date.now() + 60_000).toISOString()];
    const result = await runWalflow(['replay', ...range, '--tenant', 'exact', '--to-sink', '--json'], env);
    expect(result.code, result.output).toBe(0);
    expect((await published(true))?.text).toContain('"data":{"premium": 1234.5678901234567890123}');
  });

  it('runs next to the live sink: both keep commit order, each event once per publication', async () => {
    const recorded = await writeEvents(walflow.db, { tenant: 'busy', transactions: 40, perTransaction: 5, writers: 2 });
    await expectPublishedOnceInCommitOrder(walflow.db, { url: nats.url, stream: STREAM }, 'busy', recorded);
    // The range ends before the live events begin: which of them a replay still running would see depends on
    // how fast it reads, so a range reaching into them would make the replayed set a race.
    const range = ['--from', new Date(Date.now() - 10 * 60_000).toISOString(), '--to', new Date().toISOString()];
    // The live sink publishes new events while the replay publishes the old ones into the same stream.
    const [summary, live] = await Promise.all([
      runWalflow(['replay', ...range, '--tenant', 'busy', '--to-sink', '--json'], env),
      writeEvents(walflow.db, { tenant: 'busy', transactions: 40, perTransaction: 5, writers: 2, pauseMs: 10 }),
    ]);
    expect(summary.code, summary.output).toBe(0);
    const { replayId } = JSON.parse(summary.stdout) as SinkReplaySummary;
    await expectPublishedOnceInCommitOrder(walflow.db, { url: nats.url, stream: STREAM }, 'busy', [...recorded, ...live]);
    const replayed = (await streamContents(nats.url, STREAM)).filter((message) => message.cloudEvent.replayid === replayId);
    const { rows } = await sql<{ id: string }>`
      SELECT id FROM walflow.events WHERE tenant_id = 'busy' AND committed_at < ${range[3]}::timestamptz ORDER BY committed_at, commit_lsn, tx_position`.execute(walflow.db);
    expect(replayed.map((message) => message.cloudEvent.id)).toEqual(rows.map((row) => row.id));
    expect(rows.map((row) => row.id).sort()).toEqual([...recorded].sort());
  });

  it('stops before its next page once its signal is aborted (Ctrl-C), publishing nothing more', async () => {
    const committed = await writeEvents(walflow.db, { tenant: 'replay-stopped', transactions: 2, perTransaction: 2, writers: 1 });
    await expectPublishedOnceInCommitOrder(walflow.db, { url: nats.url, stream: STREAM }, 'replay-stopped', committed);
    const stop = new AbortController();
    stop.abort(new Error('stopped by the test'));
    const replaying = replayRange({
      db: walflow.db,
      logger: silentLogger,
      slotName: database.slotName,
      from: new Date(Date.now() - 10 * 60_000),
      to: new Date(Date.now() + 60_000),
      retentionDays: 30,
      tenantId: 'replay-stopped',
      replayId: 'stopped-sink-replay',
      toSink: { servers: [nats.url], subject: SUBJECT, stream: STREAM, maxAgeSeconds: 3600, duplicateWindowSeconds: 600 },
      signal: stop.signal,
    });
    await expect(replaying).rejects.toThrow('stopped by the test');
    expect((await streamContents(nats.url, STREAM)).filter((message) => message.cloudEvent.replayid === 'stopped-sink-replay')).toEqual([]);
  });

  it('refuses workflow options, and a sink that is not configured, as invalid configuration', async () => {
    const range = ['--from', '-1h', '--to', '-1m'];
    const dryRun = await runWalflow(['replay', ...range, '--to-sink', '--dry-run'], env);
    expect(dryRun.code).toBe(2);
    expect(dryRun.output).toMatch(/--to-sink re-publishes events and runs no workflow/);
    const { WALFLOW_NATS_URL: _unset, ...withoutSink } = env;
    const unconfigured = await runWalflow(['replay', ...range, '--to-sink'], withoutSink);
    expect(unconfigured.code).toBe(2);
    expect(unconfigured.output).toMatch(/--to-sink needs the sink configured: set WALFLOW_NATS_URL/);
  });
});
