import { LeaderLock } from '@walflow/cdc';
import type { WalflowDatabase } from '@walflow/core';
import { repairSlot } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectionConfig } from '../src/connection-config.js';
import { openMigrated, silentLogger } from './fixtures.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;

beforeAll(async () => {
  db = await openMigrated(database);
});
afterAll(() => db.destroy());

describe('walflow repair while another process leads the slot', () => {
  it('refuses before it touches the slot, even while that leader does not stream (reconnecting, say)', async () => {
    const slot = async () =>
      (await sql<{ restart_lsn: string; catalog_xmin: string }>`SELECT restart_lsn::text, catalog_xmin::text FROM pg_replication_slots WHERE slot_name = ${database.slotName}`.execute(db)).rows;
    const before = await slot();
    expect(before).toHaveLength(1);
    const leader = await new LeaderLock(connectionConfig(database.url), database.slotName, silentLogger).tryAcquire();
    expect(leader).not.toBeNull();
    try {
      await expect(repairSlot({ db, databaseUrl: database.url, slotName: database.slotName, logger: silentLogger })).rejects.toMatchObject({ code: 'leader_busy' });
      expect(await slot()).toEqual(before);
      const state = await db.selectFrom('walflow.consumer_state').select('repair_started_at').where('slot_name', '=', database.slotName).executeTakeFirstOrThrow();
      expect(state.repair_started_at).toBeNull();
    } finally {
      await leader!.release();
    }
  });
});
