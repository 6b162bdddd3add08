import type { WalflowDatabase } from '@walflow/core';
import { createDatabase } from '@walflow/server';
import { createTestDatabase, startPostgres, waitFor, type CreatedTestDatabase, type StartedPostgres } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runWalflow, startWalflowProcess, type WalflowChild } from '../../cli/test/walflow-process.js';
import { expectPublishedOnceInCommitOrder } from './expect-published.js';
import { startNatsServer, type TestNatsServer } from './nats-server.js';
import { streamContents, streamSize } from './stream-contents.js';
import { writeEvents } from './write-events.js';

let cluster: StartedPostgres;
let database: CreatedTestDatabase;
let db: Kysely<WalflowDatabase>;
let nats: TestNatsServer;
let env: Record<string, string>;
const children: WalflowChild[] = [];

const STREAM = 'CRASH_TEST';

beforeAll(async () => {
  cluster = await startPostgres({ dedicated: true });
  database = await createTestDatabase(cluster.url);
  nats = await startNatsServer();
  env = { DATABASE_URL: database.url, WALFLOW_SLOT: 'walflow_sink_crash', WALFLOW_HTTP_PORT: '0', WALFLOW_NATS_URL: nats.url, WALFLOW_NATS_STREAM: STREAM };
  expect((await runWalflow(['migrate'], env)).code).toBe(0);
  db = createDatabase(database.url, pino({ level: 'silent' }));
});
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await db?.destroy();
  await database?.drop();
  await cluster?.stop();
  await nats?.dispose();
});

async function start(): Promise<WalflowChild> {
  const child = await startWalflowProcess(env);
  children.push(child);
  return child;
}

async function savedCursor(): Promise<number> {
  const { rows } = await sql<{ published: string }>`SELECT published::text FROM walflow.sink_cursors WHERE sink = ${`nats:${STREAM}`}`.execute(db);
  return Number(rows[0]?.published ?? 0);
}

describe('the JetStream sink across kill -9', () => {
  it('delivers every event to JetStream exactly once when walflow is killed and restarted mid-stream', async () => {
    let child = await start();
    const writing = writeEvents(db, { tenant: 'crash', transactions: 300, perTransaction: 4, writers: 2, pauseMs: 20 });
    const kills: { stored: number; saved: number }[] = [];
    for (let kill = 1; kill <= 3; kill++) {
      await waitFor(`${kill * 400} messages in the stream`, async () => (await streamSize(nats.url, STREAM)) >= kill * 400, { timeoutMs: 60_000 });
      child.kill('SIGKILL');
      await child.exited;
      // Messages stored beyond the saved cursor are published again by the next process, and dropped by JetStream.
      kills.push({ stored: await streamSize(nats.url, STREAM), saved: await savedCursor() });
      child = await start();
    }
    const committed = await writing;
    await expectPublishedOnceInCommitOrder(db, { url: nats.url, stream: STREAM }, 'crash', committed);
    const stored = await streamContents(nats.url, STREAM);
    expect(stored).toHaveLength(committed.length);
    expect(new Set(stored.map((message) => message.msgId)).size).toBe(committed.length);
    console.info(`sink across kill -9: ${committed.length} events, ${stored.length} messages; at each kill (stored/saved): ${kills.map((k) => `${k.stored}/${k.saved}`).join(', ')}`);
    child.kill('SIGTERM');
    expect(await child.exited).toBe(0);
  });
});
