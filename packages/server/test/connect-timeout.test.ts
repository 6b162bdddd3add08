import { createDatabase, type RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql } from 'kysely';
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

  // Without the limit, an attempt at the leader lock that PostgreSQL never answers is never given up: the consumer
  // waits for it, never tries again, and a stop waits for ever.
  it('gives up on a leader-lock connection PostgreSQL does not answer, tries again, and leads once it answers', async () => {
    const proxy = await holdConnectionsNamed(database.url, 'walflow-leader-lock');
    let walflow: RunningWalflow | undefined;
    try {
      walflow = await startTestWalflow(withConnectTimeout(proxy.url, 2), database.slotName, { role: 'consumer', standbyPollMs: 100 });
      await waitFor('a second attempt at the leader lock, the first given up', () => proxy.held() >= 2);
      expect(walflow.consumerStatus().state).not.toBe('streaming');
      proxy.release();
      await waitFor('the stream', () => walflow!.consumerStatus().state === 'streaming');
    } finally {
      await walflow?.stop();
      await proxy.close();
    }
  });
});
