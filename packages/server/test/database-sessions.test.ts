import { setTimeout as sleep } from 'node:timers/promises';
import { createDatabase } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { silentLogger, startTestWalflow } from './fixtures.js';

const database = useTestDatabase();

describe("walflow's database sessions", () => {
  it('are ended by the server when they sit in an open transaction past the limit, which frees what they lock', async () => {
    const db = createDatabase(database.url, silentLogger, { max: 1, idleInTransactionTimeoutMs: 300 });
    try {
      const abandoned = db.transaction().execute(async (trx) => {
        await sql`SELECT 1`.execute(trx);
        // As a process cut off from the server would leave it: open, between statements.
        await sleep(1_000);
        await sql`SELECT 1`.execute(trx);
      });
      // The server ends the session (FATAL 25P03); pg then reports the connection lost.
      await expect(abandoned).rejects.toThrow(/idle-in-transaction timeout|Connection terminated|connection error/);
      const { rows } = await sql<{ sessions: number }>`
        SELECT count(*)::int AS sessions FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'`.execute(db);
      expect(rows).toEqual([{ sessions: 0 }]);
    } finally {
      await db.destroy();
    }
  });

  it('of walflow start carry that limit, ten minutes', async () => {
    const walflow = await startTestWalflow(database.url, database.slotName, { role: 'http' });
    try {
      const { rows } = await sql<{ limit: string }>`SELECT current_setting('idle_in_transaction_session_timeout') AS limit`.execute(walflow.db);
      expect(rows).toEqual([{ limit: '10min' }]);
    } finally {
      await walflow.stop();
    }
  });

  it('are read committed and write times in UTC whatever the defaults of the database or its URL', async () => {
    const url = `${database.url}${database.url.includes('?') ? '&' : '?'}options=${encodeURIComponent('-c default_transaction_isolation=repeatable\\ read -c TimeZone=Europe/Berlin')}`;
    const db = createDatabase(url, silentLogger, { max: 1 });
    try {
      const isolation = async () => (await sql<{ level: string }>`SELECT current_setting('transaction_isolation') AS level`.execute(db)).rows[0]!.level;
      expect(await isolation()).toBe('read committed');
      expect((await sql<{ zone: string }>`SELECT current_setting('TimeZone') AS zone`.execute(db)).rows[0]!.zone).toBe('UTC');
      expect(await db.transaction().execute(async (trx) => (await sql<{ level: string }>`SELECT current_setting('transaction_isolation') AS level`.execute(trx)).rows[0]!.level)).toBe(
        'read committed',
      );
    } finally {
      await db.destroy();
    }
  });

  it('commit durably before the slot is acknowledged: synchronous_commit off becomes local, a stronger setting stays', async () => {
    const setting = async (value: string) => {
      const db = createDatabase(`${database.url}${database.url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c synchronous_commit=${value}`)}`, silentLogger, { max: 1 });
      try {
        return await db.transaction().execute(async (trx) => (await sql<{ value: string }>`SELECT current_setting('synchronous_commit') AS value`.execute(trx)).rows[0]!.value);
      } finally {
        await db.destroy();
      }
    };
    expect(await setting('off')).toBe('local');
    expect(await setting('remote_apply')).toBe('remote_apply');
    expect(await setting('on')).toBe('on');
  });
});
