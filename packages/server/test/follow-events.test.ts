import { randomUUID } from 'node:crypto';
import type { WalflowDatabase } from '@walflow/core';
import { eventsRecordedAfter, followStart, RECORDING_APPLICATION_NAME } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openMigrated } from './fixtures.js';

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
});
