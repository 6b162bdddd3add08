import { randomUUID } from 'node:crypto';
import type { WalflowDatabase } from '@walflow/core';
import { createDatabase, eventsRecordedAfter, followEvents, followSafePoint, followStart, RECORDING_APPLICATION_NAME, type EventCursor } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openMigrated, silentLogger } from './fixtures.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;

beforeAll(async () => {
  db = await openMigrated(database);
});
afterAll(async () => {
  await db.destroy();
});

describe('following the recorded events', () => {
  it('starts early enough to show a batch whose recording began before the follower and commits after it', async () => {
    // A dispatch in flight: walflow's session, its transaction begun, its event inserted, not yet committed.
    const dispatching = new pg.Client({ connectionString: database.url, application_name: RECORDING_APPLICATION_NAME });
    await dispatching.connect();
    const id = randomUUID();
    try {
      await dispatching.query('BEGIN');
      await dispatching.query(
        `INSERT INTO walflow.events (id, event_type, tenant_id, payload, committed_at, commit_lsn, tx_position, xid)
         VALUES ($1, 'policy.approved', 'follow', '{}', now(), '0/1', 0, 1)`,
        [id],
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
      const from = await followStart(db);
      await dispatching.query('COMMIT');
      const shown = await eventsRecordedAfter(db, from, { tenantId: 'follow' }, 10);
      expect(shown.map((event) => event.id)).toEqual([id]);
    } finally {
      await dispatching.end();
    }
  });

  it('moves past what its filter does not show, up to a batch still recording, and shows that batch once it commits', async () => {
    const dispatching = new pg.Client({ connectionString: database.url, application_name: RECORDING_APPLICATION_NAME });
    await dispatching.connect();
    const id = randomUUID();
    const cursors: EventCursor[] = [];
    const shown: string[] = [];
    const stop = new AbortController();
    try {
      await dispatching.query('BEGIN');
      await dispatching.query(
        `INSERT INTO walflow.events (id, event_type, tenant_id, payload, committed_at, commit_lsn, tx_position, xid)
         VALUES ($1, 'policy.approved', 'follow-safe', '{}', now(), '0/1', 0, 1)`,
        [id],
      );
      const { rows } = await dispatching.query<{ began: string }>(`SELECT to_json(now()) #>> '{}' AS began`);
      const following = followEvents({
        read: (cursor) => {
          cursors.push(cursor);
          return eventsRecordedAfter(db, cursor, { tenantId: 'follow-safe' }, 10);
        },
        from: { receivedAt: '2000-01-01T00:00:00Z', id: '00000000-0000-0000-0000-000000000000' },
        safePoint: () => followSafePoint(db),
        intervalMs: 20,
        signal: stop.signal,
        onEvents: (events) => void shown.push(...events.map((event) => event.id)),
      });
      await waitFor('a few reads', () => cursors.length >= 3);
      // Moved up from 2000, but not past the open batch's start.
      const last = cursors.at(-1)!;
      expect(Date.parse(last.receivedAt)).toBeGreaterThan(Date.parse('2026-01-01T00:00:00Z'));
      expect(Date.parse(last.receivedAt)).toBeLessThanOrEqual(Date.parse(rows[0]!.began));
      await dispatching.query('COMMIT');
      await waitFor('the batch to be shown', () => shown.includes(id));
      stop.abort();
      await following;
    } finally {
      stop.abort();
      await dispatching.end();
    }
  });

  it('stays where it is when it cannot see the recording sessions’ transactions', async () => {
    const role = `follow_reader_${Date.now()}`;
    await sql`CREATE ROLE ${sql.id(role)} LOGIN`.execute(db);
    const url = new URL(database.url);
    url.username = role;
    const reader = createDatabase(url.toString(), silentLogger, { max: 1, applicationName: 'walflow-cli' });
    const dispatching = new pg.Client({ connectionString: database.url, application_name: RECORDING_APPLICATION_NAME });
    await dispatching.connect();
    try {
      await dispatching.query('BEGIN');
      await dispatching.query('SELECT 1');
      expect(await followSafePoint(db)).not.toBeNull();
      expect(await followSafePoint(reader)).toBeNull();
    } finally {
      await dispatching.end();
      await reader.destroy();
      await sql`DROP ROLE ${sql.id(role)}`.execute(db);
    }
  });
});
