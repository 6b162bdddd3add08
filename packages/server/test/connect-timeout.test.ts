import { createDatabase, type RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql } from 'kysely';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { silentLogger, startTestWalflow } from './fixtures.js';
import { holdConnectionsNamed } from './held-connections.js';

const database = useTestDatabase();

/** The URL with libpq's connect_timeout of `seconds`. */
function withConnectTimeout(url: string, seconds: number): string {
  const limited = new URL(url);
  limited.searchParams.set('connect_timeout', String(seconds));
  return limited.toString();
}

describe("DATABASE_URL's connect_timeout", () => {
  it('limits how long the pool waits for PostgreSQL to answer a new connection, and says so', async () => {
    const proxy = await holdConnectionsNamed(database.url, 'walflow-cli');
    const db = createDatabase(withConnectTimeout(proxy.url, 2), silentLogger, { applicationName: 'walflow-cli' });
    try {
      const started = Date.now();
      await expect(sql`SELECT 1`.execute(db)).rejects.toThrow('PostgreSQL did not answer within 2 s (the connect_timeout of DATABASE_URL)');
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(proxy.held()).toBe(1);
    } finally {
      await db.destroy();
      await proxy.close();
    }
  });

  it('names PostgreSQL and DATABASE_URL when the connection is refused', async () => {
    const refusing = new URL(database.url);
    refusing.hostname = '127.0.0.1';
    refusing.port = '1';
    const db = createDatabase(refusing.toString(), silentLogger);
    try {
      await expect(sql`SELECT 1`.execute(db)).rejects.toThrow(/^could not connect to PostgreSQL \(DATABASE_URL\): connect ECONNREFUSED 127\.0\.0\.1:1$/);
    } finally {
      await db.destroy();
    }
  });

  // Without the limit, an attempt that PostgreSQL never answers is never given up: the process waits for it,
  // never tries again, and a stop waits for ever. pg's own error said only "timeout expired".
  it.each([
    { connection: 'walflow-leader-lock', role: 'consumer', warning: 'could not reach PostgreSQL for the leader lock' },
    { connection: 'walflow-replication', role: 'consumer', warning: 'replication reconnecting' },
    { connection: 'walflow-run-listener', role: 'worker', warning: 'could not listen for queued runs; retrying (workers still poll)' },
  ] as const)('gives up on a $connection connection PostgreSQL does not answer, says why, and tries again until it answers', async ({ connection, role, warning }) => {
    const proxy = await holdConnectionsNamed(database.url, connection);
    const logged: { msg: string; err?: { message: string } }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => logged.push(JSON.parse(line) as (typeof logged)[number]) });
    let walflow: RunningWalflow | undefined;
    try {
      walflow = await startTestWalflow(withConnectTimeout(proxy.url, 2), database.slotName, { role, standbyPollMs: 100 }, logger);
      await waitFor('a second attempt, the first given up', () => proxy.held() >= 2);
      if (role === 'consumer') expect(walflow.consumerStatus().state).not.toBe('streaming');
      expect(logged.find((line) => line.msg === warning)?.err?.message).toContain('PostgreSQL did not answer within 2 s (the connect_timeout of DATABASE_URL)');
      proxy.release();
      if (role === 'consumer') await waitFor('the stream', () => walflow!.consumerStatus().state === 'streaming');
      else await waitFor('the listener', () => logged.some((line) => line.msg === 'listening for queued runs'));
    } finally {
      await walflow?.stop();
      await proxy.close();
    }
  });
});
