import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { WalflowDatabase } from '@walflow/core';
import { startHttpServer, type HttpServer } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleHandler } from '../src/console/console-router.js';
import { MAX_LIVE_STREAMS } from '../src/console/live-events.js';
import { OverviewSamples } from '../src/console/overview-samples.js';
import { TokenAttempts } from '../src/console/token-attempts.js';
import { ScopedSlots } from '../src/console/scoped-slots.js';
import { SignedOutSessions } from '../src/console/signed-out-sessions.js';
import { ConsoleAuth } from '../src/console/session.js';
import { WalflowMetrics } from '../src/metrics.js';
import { CONSOLE_TOKEN } from './console-fixtures.js';
import { openMigrated, silentLogger, testConfig } from './fixtures.js';

/**
 * The console's live list served on its own, over a pool of one connection the test can hold, with every page
 * the stream reads counted: what a stream does after its client stops reading or leaves is seen, not guessed.
 */
const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
let pool: pg.Pool;
let consoleDb: Kysely<WalflowDatabase>;
let server: HttpServer;
const closing = new AbortController();

interface ServedRequest {
  request: IncomingMessage;
  response: ServerResponse;
  ended: boolean;
}
const served: ServedRequest[] = [];
/** Each page of events the stream read, with what the process still held for the client when it read it. */
const pagesRead: { bufferedBytes: number; highWaterMark: number }[] = [];

beforeAll(async () => {
  db = await openMigrated(database);
  pool = new pg.Pool({ connectionString: database.url, max: 1 });
  consoleDb = new Kysely<WalflowDatabase>({
    dialect: new PostgresDialect({ pool }),
    log: (event) => {
      const stream = served.at(-1);
      // The stream's page query (eventsRecordedAfter).
      if (event.level === 'query' && event.query.sql.includes('(received_at, id) >') && stream !== undefined) {
        pagesRead.push({ bufferedBytes: stream.response.writableLength, highWaterMark: stream.response.writableHighWaterMark });
      }
    },
  });
  const handle = consoleHandler({
    host: {
      config: testConfig(database.url, database.slotName),
      logger: silentLogger,
      health: () => null,
      consumerStatus: () => ({ state: 'stopped', role: 'standby', since: new Date() }),
      metrics: new WalflowMetrics(),
      onRunsQueued: () => undefined,
    },
    db: consoleDb,
    auth: new ConsoleAuth({ token: CONSOLE_TOKEN, tenantTokens: new Map() }),
    signedOut: new SignedOutSessions(consoleDb),
    samples: new OverviewSamples(),
    closing: closing.signal,
    liveStreams: new ScopedSlots(MAX_LIVE_STREAMS),
    backtests: new ScopedSlots(1),
    tokenAttempts: new TokenAttempts(),
  });
  server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    routes: {},
    mounts: {
      '/console': async (request, response) => {
        const entry: ServedRequest = { request, response, ended: false };
        served.push(entry);
        await handle(request, response).finally(() => (entry.ended = true));
      },
    },
  });
});
afterAll(async () => {
  closing.abort();
  await server?.close();
  await consoleDb?.destroy();
  await db?.destroy();
});

/** Sends the stream's request on a raw connection; the returned socket reads nothing until resumed. */
async function openStream(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ socket: Socket; stream: ServedRequest }> {
  const before = served.length;
  const socket = connect(server.port, '127.0.0.1');
  socket.pause();
  const lines = Object.entries({ host: `127.0.0.1:${server.port}`, authorization: `Bearer ${CONSOLE_TOKEN}`, ...headers }).map(([name, value]) => `${name}: ${value}\r\n`);
  socket.write(`${method} ${path} HTTP/1.1\r\n${lines.join('')}\r\n`);
  const stream = await waitFor('the stream request to arrive', () => served.length > before && served[before]);
  return { socket, stream };
}

describe('the console’s live event stream', () => {
  it(`refuses a stream beyond ${MAX_LIVE_STREAMS} open for one scope, and takes one again once another has closed`, async () => {
    const opened = [];
    try {
      for (let n = 0; n < MAX_LIVE_STREAMS; n++) opened.push(await openStream('/console/events/stream'));
      const { socket, stream } = await openStream('/console/events/stream');
      await waitFor('the stream beyond the limit to be answered', () => stream.ended);
      expect(stream.response.statusCode).toBe(429);
      socket.destroy();
      opened.shift()!.socket.destroy();
      await waitFor('a stream to close', () => served.filter((entry) => entry.ended).length >= 2);
      const again = await openStream('/console/events/stream');
      opened.push(again);
      await waitFor('the stream to start', () => again.stream.response.headersSent);
      expect(again.stream.response.statusCode).toBe(200);
    } finally {
      for (const { socket } of opened) socket.destroy();
      await waitFor('every stream to end', () => served.every((entry) => entry.ended), { timeoutMs: 5_000 });
    }
  });

  it('starts now for a Last-Event-ID of a day that does not exist, rather than fail at every reconnect', async () => {
    const { socket, stream } = await openStream('/console/events/stream', { 'last-event-id': '2026-02-30T00:00:00Z|00000000-0000-0000-0000-000000000000' });
    socket.resume();
    try {
      await waitFor('the stream to start', () => stream.response.headersSent);
      const readsBefore = pagesRead.length;
      await waitFor('a few polls', () => pagesRead.length >= readsBefore + 2, { timeoutMs: 5_000 });
      expect(stream.response.statusCode).toBe(200);
      expect(stream.ended).toBe(false);
    } finally {
      socket.destroy();
      await waitFor('the stream to end', () => stream.ended, { timeoutMs: 5_000 });
    }
  });

  it('resumes a Last-Event-ID of up to 15 minutes ago from there, an older one from 15 minutes back, and a future one from now', async () => {
    const at = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000).toISOString();
    const record = async (type: string, receivedAt: string): Promise<string> =>
      (
        await sql<{ id: string }>`
          INSERT INTO walflow.events (id, event_type, tenant_id, payload, committed_at, commit_lsn, tx_position, xid, received_at)
          VALUES (gen_random_uuid(), ${type}, 'resume', '{}', ${receivedAt}::timestamptz, '0/1', 0, 1, ${receivedAt}::timestamptz) RETURNING id::text AS id`.execute(db)
      ).rows[0]!.id;
    /** The ids of the events a stream sends until the event `until` records arrives, and that event's id. */
    const received = async (lastEventId: string, until: () => Promise<string>): Promise<{ ids: string[]; last: string }> => {
      const { socket, stream } = await openStream('/console/events/stream?tenant=resume', { 'last-event-id': lastEventId });
      const ids: string[] = [];
      let pending = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        const parts = (pending + chunk).split('\n\n');
        pending = parts.pop()!;
        for (const part of parts) {
          const id = /^id: [^|\n]*\|(\S+)$/m.exec(part)?.[1];
          if (id !== undefined && part.includes('\nevent: recorded\n')) ids.push(id);
        }
      });
      socket.resume();
      try {
        await waitFor('the stream to start', () => stream.response.headersSent);
        const last = await until();
        await waitFor(`event ${last} to arrive`, () => ids.includes(last));
        return { ids, last };
      } finally {
        socket.destroy();
        await waitFor('the stream to end', () => stream.ended);
      }
    };
    await record('resume.twenty', at(20));
    const tenAgo = await record('resume.ten', at(10));
    const nil = '00000000-0000-0000-0000-000000000000';
    // Twelve minutes ago: from there, the event of ten minutes ago first. 25 minutes ago: from 15 minutes back, so
    // not the event of twenty.
    expect((await received(`${at(12)}|${nil}`, () => Promise.resolve(tenAgo))).ids).toEqual([tenAgo]);
    expect((await received(`${at(25)}|${nil}`, () => Promise.resolve(tenAgo))).ids).toEqual([tenAgo]);
    // An hour ahead: from now, so an event of a minute from now (past every point a poll may start from meanwhile,
    // long before the hour) arrives.
    const ahead = await received(`${new Date(Date.now() + 3_600_000).toISOString()}|${nil}`, () => record('resume.soon', at(-1)));
    expect(ahead.ids).toEqual([ahead.last]);
  });

  it('answers HEAD with its headers and follows nothing, though the connection stays open', async () => {
    const readsBefore = pagesRead.length;
    const { socket, stream } = await openStream('/console/events/stream', {}, 'HEAD');
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk)).resume();
    try {
      await waitFor('the HEAD request to end', () => stream.ended, { timeoutMs: 3_000 });
      await waitFor('its headers', () => received.includes('\r\n\r\n'));
      expect(received).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*content-type: text\/event-stream; charset=utf-8\r\n/i);
      expect(pagesRead.length).toBe(readsBefore);
    } finally {
      socket.destroy();
    }
  });

  it('ends without reading the log when its client leaves while it reads where to start', async () => {
    const readsBefore = pagesRead.length;
    // The console's only connection is taken: the stream waits for it to read its starting point.
    const held = await pool.connect();
    let stream: ServedRequest;
    try {
      const opened = await openStream('/console/events/stream');
      stream = opened.stream;
      opened.socket.destroy();
      await waitFor('the server to see the client leave', () => stream.request.socket.destroyed);
    } finally {
      held.release();
    }
    await waitFor('the stream to end', () => stream.ended, { timeoutMs: 5_000 });
    expect(pagesRead.length).toBe(readsBefore);
  });

  it('waits for a client that reads nothing instead of reading the whole log into memory, and then sends all of it', async () => {
    const { rows } = await sql<{ last: string; count: number }>`
      WITH inserted AS (
        INSERT INTO walflow.events (id, event_type, tenant_id, payload, committed_at, commit_lsn, tx_position, xid)
        SELECT gen_random_uuid(), 'flood.filled', 'flood', jsonb_build_object('n', n), now(), '0/1', n, 1
          FROM generate_series(1, 40000) AS n
        RETURNING id)
      SELECT max(id::text) AS last, count(*)::int AS count FROM inserted`.execute(db);
    const { last, count } = rows[0]!;
    const readsBefore = pagesRead.length;
    // An old Last-Event-ID: the stream resumes before every one of the 40,000 events, 10 MB of messages, more
    // than the sockets' buffers take in from a client that never reads (about 4 MB on Linux's defaults).
    const { socket, stream } = await openStream('/console/events/stream?tenant=flood', { 'last-event-id': '2000-01-01T00:00:00Z|00000000-0000-0000-0000-000000000000' });
    const overfilled = () => pagesRead.slice(readsBefore).filter((page) => page.bufferedBytes >= page.highWaterMark);
    await waitFor('the stream to wait for its client (or to read on regardless)', () => overfilled().length > 0 || (stream.response.writableNeedDrain && stream.response.listenerCount('drain') > 0));
    expect(overfilled()).toEqual([]);
    expect(pagesRead.length - readsBefore).toBeLessThan(count / 200);

    // Each message is one chunk of the response; counted as they arrive, not kept.
    let messages = 0;
    let pending = '';
    let lastArrived = false;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      const parts = (pending + chunk).split('\n\n');
      pending = parts.pop()!;
      messages += parts.filter((part) => part.includes('\nevent: recorded\n')).length;
      if (parts.some((part) => part.includes(`|${last}\n`))) lastArrived = true;
    });
    socket.resume();
    await waitFor('every event to reach the client', () => lastArrived);
    expect(messages).toBe(count);
    expect(overfilled()).toEqual([]);
    socket.destroy();
    await waitFor('the stream to end', () => stream.ended);
  });
});
