import type { WalflowDatabase } from '@walflow/core';
import { Dispatcher } from '@walflow/executor';
import { emit } from '@walflow/outbox';
import { repairSlot } from '@walflow/server';
import { useTestDatabase, waitFor, withClient } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { ensureEventPartitions } from '../src/event-partitions.js';
import { approvalEvent, openMigrated, silentLogger } from './fixtures.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
const DAY = 86_400_000;

beforeAll(async () => {
  db = await openMigrated(database);
});
afterAll(async () => {
  await db.destroy();
});

/** Whether the event log has a partition for the UTC day `days` from today. */
async function hasPartition(days: number): Promise<boolean> {
  const { rows } = await sql<{ found: boolean }>`
    SELECT to_regclass('walflow.events_' || to_char((now() AT TIME ZONE 'UTC')::date + ${days}::int, 'YYYYMMDD')) IS NOT NULL AS found`.execute(db);
  return rows[0]!.found;
}

async function inDefaultPartition(tenant: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM walflow.events_default WHERE tenant_id = ${tenant}`.execute(db);
  return rows[0]!.n;
}

describe("the event log's daily partitions", () => {
  it('are made day by day: a day whose events the default partition holds is passed over, and the days after it are made', async () => {
    const farAhead = { ...approvalEvent('partitions', 1), committedAt: new Date(Date.now() + 9 * DAY).toISOString() };
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [farAhead], parked: [], checkpoint: null });
    expect(await inDefaultPartition('partitions')).toBe(1);

    const { rows } = await sql<{ created: number }>`SELECT walflow.ensure_event_partitions(10) AS created`.execute(db);
    expect(rows[0]!.created).toBe(2);
    expect([await hasPartition(8), await hasPartition(9), await hasPartition(10)]).toEqual([true, false, true]);
  });

  it('are made by a repair before it records the backlog, so that a day with none does not lose its own for good', async () => {
    // As after a restore older than a week: no partition for today or yesterday yet.
    for (const days of [-1, 0]) {
      await sql`DROP TABLE ${sql.raw(`walflow.events_${new Date(Date.now() + days * DAY).toISOString().slice(0, 10).replaceAll('-', '')}`)}`.execute(db);
    }
    await sql`SELECT pg_drop_replication_slot(${database.slotName})`.execute(db);
    await emit(db, { type: 'policy.approved', tenantId: 'repaired', payload: { n: 1 } });

    // A reader of the log holds its lock for a while: a repair waits for it, where the maintenance gives up after 1 s.
    const repaired = await withClient(database.url, async (reader) => {
      await reader.query('BEGIN');
      await reader.query('SELECT count(*) FROM walflow.events');
      const repairing = repairSlot({ db, databaseUrl: database.url, slotName: database.slotName, logger: silentLogger });
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      await reader.query('COMMIT');
      return repairing;
    });
    expect(repaired).toMatchObject({ recovered: 1 });
    expect(await inDefaultPartition('repaired')).toBe(0);
    expect([await hasPartition(-1), await hasPartition(0)]).toEqual([true, true]);
  });

  it('are not waited for behind a long reader of the log, which would queue every dispatch behind them: the next maintenance makes the day', async () => {
    await sql`DROP TABLE ${sql.raw(`walflow.events_${new Date(Date.now() + 7 * DAY).toISOString().slice(0, 10).replaceAll('-', '')}`)}`.execute(db);
    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push((JSON.parse(line) as { msg: string }).msg) });
    let elapsed = 0;
    // A backtest's transaction: it reads the log, and holds its lock until it ends, here after 10 s at most.
    await withClient(database.url, async (reader) => {
      await reader.query('BEGIN');
      await reader.query('SELECT count(*) FROM walflow.events');
      const started = performance.now();
      const made = ensureEventPartitions(db, logger).then(() => (elapsed = performance.now() - started));
      await Promise.race([made, new Promise((resolve) => setTimeout(resolve, 10_000))]);
      await reader.query('COMMIT');
      await made;
    });
    expect(elapsed).toBeLessThan(5_000);
    expect(warnings).toEqual([expect.stringMatching(/could not create event partitions; trying again/)]);
    expect(await hasPartition(7)).toBe(false);
    await ensureEventPartitions(db, logger);
    expect(await hasPartition(7)).toBe(true);
  });
  it('are made once when two sessions find a day missing at once: the second passes over the day the first made', async () => {
    const day = "'walflow.events_' || to_char((now() AT TIME ZONE 'UTC')::date + 7, 'YYYYMMDD')";
    await sql.raw(`DO $$ BEGIN EXECUTE format('DROP TABLE %s', ${day}); END $$`).execute(db);
    expect(await hasPartition(7)).toBe(false);
    await withClient(database.url, async (first) => {
      await first.query('BEGIN');
      expect((await first.query<{ made: number }>('SELECT walflow.ensure_event_partitions() AS made')).rows[0]!.made).toBe(1);
      // Waits for the first's lock on the log, then finds the day made.
      const second = withClient(database.url, (client) => client.query<{ made: number }>('SELECT walflow.ensure_event_partitions() AS made'));
      await waitFor('the second to wait for the log', async () => {
        const { rows } = await sql<{ n: number }>`
          SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%ensure_event_partitions%'`.execute(db);
        return rows[0]!.n > 0;
      });
      await first.query('COMMIT');
      expect((await second).rows[0]!.made).toBe(0);
    });
    expect(await hasPartition(7)).toBe(true);
  });
});
