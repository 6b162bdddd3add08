import type { WalflowDatabase } from '@walflow/core';
import { Dispatcher } from '@walflow/executor';
import { computeHealth, type HealthThresholds } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalEvent, openMigrated, silentLogger, testConfig } from './fixtures.js';

/**
 * A JetStream sink that is not failing and yet publishes nothing (a process stopped, or `walflow status` computed
 * from the database) shows only in how old its oldest unpublished event is.
 */
const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;

beforeAll(async () => {
  db = await openMigrated(database);
  // A sink's cursor at the start of the log: from here on every recorded event has its place in recording order.
  await sql`INSERT INTO walflow.sink_cursors (sink, recorded_xid, commit_lsn, tx_position, event_id)
            VALUES ('behind', '0', '0/0', -1, '00000000-0000-0000-0000-000000000000')`.execute(db);
  const event = approvalEvent('sink-lag', 1);
  await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [event], parked: [], checkpoint: null });
  await sql`UPDATE walflow.events SET received_at = now() - interval '2 minutes' WHERE id = ${event.id}::uuid`.execute(db);
});
afterAll(() => db.destroy());

async function sinkState(lagSecondsDegraded: number, lagSecondsDown: number): Promise<string | undefined> {
  const thresholds: HealthThresholds = { ...testConfig(database.url, database.slotName).healthThresholds, lagSecondsDegraded, lagSecondsDown };
  const report = await computeHealth(db, { slotName: database.slotName, thresholds, sink: { name: 'behind' } });
  // Two minutes, and however long the test has run since.
  expect(report.sink?.pending).toBe(1);
  expect(report.sink?.lagSeconds).toBeGreaterThanOrEqual(119);
  expect(report.sink?.lagSeconds).toBeLessThan(170);
  return report.checks.find((check) => check.name === 'sink')?.state;
}

describe("the sink check of a sink that publishes nothing", () => {
  it('is degraded, then down, as its oldest unpublished event passes each lag threshold', async () => {
    expect(await sinkState(600, 6000)).toBe('ok');
    expect(await sinkState(60, 600)).toBe('degraded');
    expect(await sinkState(30, 60)).toBe('down');
  });
});
