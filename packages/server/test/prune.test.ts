import { randomUUID } from 'node:crypto';
import { parseLsn, type EventEnvelope, type WalflowDatabase } from '@walflow/core';
import { Dispatcher } from '@walflow/executor';
import { createDatabase, migrate, prune } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, silentLogger } from './fixtures.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
const DAY = 86_400_000;

beforeAll(async () => {
  db = createDatabase(database.url, silentLogger);
  await migrate({ db, slotName: database.slotName, logger: silentLogger });
});
afterAll(async () => {
  await db.destroy();
});

function eventAt(committedAt: Date, n: number): EventEnvelope {
  return {
    id: randomUUID(),
    type: 'policy.approved',
    tenantId: 'prune',
    aggregateType: null,
    aggregateId: null,
    payload: { n },
    metadata: {},
    committedAt: committedAt.toISOString(),
    commitLsn: parseLsn('0/100'),
    position: n,
    xid: '1',
  };
}

async function counts() {
  const { rows } = await sql<{ events: string; decisions: string; runs: string; queued: string }>`
    SELECT (SELECT count(*) FROM walflow.events) AS events, (SELECT count(*) FROM walflow.decisions) AS decisions,
           (SELECT count(*) FROM walflow.workflow_runs) AS runs, (SELECT count(*) FROM walflow.workflow_runs WHERE status = 'queued') AS queued`.execute(db);
  return rows[0];
}

describe('prune', () => {
  it('removes exactly what is older than the window, keeps unfinished runs with their decisions and events, and a dry run changes nothing', async () => {
    await applyTestWorkflow(db, { tenant: 'prune', name: 'w', trigger: { event: 'policy.approved' }, actions: [{ type: 'emit_event', event: 'x.y' }] });
    // Every event also gets a decision that queued no run: a decision record of its own.
    await applyTestWorkflow(db, { tenant: 'prune', name: 'never', trigger: { event: 'policy.approved' }, condition: 'false', actions: [{ type: 'emit_event', event: 'x.y' }] });
    const now = Date.now();
    const old = [40, 35, 31].map((days, n) => eventAt(new Date(now - days * DAY), n));
    const young = [29, 1, 0].map((days, n) => eventAt(new Date(now - days * DAY + 60_000), n + 3));
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [...old, ...young], parked: [], checkpoint: null });
    // Two old runs finished, one still queued: a queued run is never pruned.
    await sql`UPDATE walflow.workflow_runs SET status = 'succeeded' WHERE event_id IN (${old[0]!.id}::uuid, ${old[1]!.id}::uuid)`.execute(db);
    expect(await counts()).toEqual({ events: '6', decisions: '12', runs: '6', queued: '4' });

    const cutoff = new Date(now - 30 * DAY);
    await sql`INSERT INTO walflow.audit_log (at, actor, action) VALUES (now() - interval '400 days', 'ops@host', 'old'), (now() - interval '200 days', 'ops@host', 'kept')`.execute(db);
    // Old: three condition_false records and the decisions of the two finished runs; the queued run keeps its
    // own, and its event, which a worker reads when it claims the run.
    const pruned = { droppedPartitions: [], events: 2, decisions: 5, runs: 2, deadLetters: 0, auditEntries: 1, keptForSinks: 0 };
    expect(await prune(db, { olderThan: cutoff, dryRun: true })).toEqual(pruned);
    expect(await counts()).toEqual({ events: '6', decisions: '12', runs: '6', queued: '4' });

    expect(await prune(db, { olderThan: cutoff, batchSize: 2 })).toEqual(pruned);
    // The audit log is kept a year, longer than events.
    expect((await db.selectFrom('walflow.audit_log').select('action').execute()).map((row) => row.action)).toEqual(['kept']);
    const left = await db.selectFrom('walflow.events').select('id').execute();
    expect(left.map((row) => row.id).sort()).toEqual([...young, old[2]!].map((event) => event.id).sort());
    expect(await counts()).toEqual({ events: '4', decisions: '7', runs: '4', queued: '4' });
  });

  it('drops no daily partition holding the event of an unfinished run, and drops the rest before the cut', async () => {
    const tomorrow = new Date(Math.ceil(Date.now() / DAY) * DAY);
    const today = new Date(tomorrow.getTime() - DAY);
    const name = `events_${today.toISOString().slice(0, 10).replaceAll('-', '')}`;
    // Every event left has a queued run: none goes, and every run can still be claimed with its event.
    expect(await prune(db, { olderThan: tomorrow })).toMatchObject({ droppedPartitions: [], events: 0 });
    const { rows: orphans } = await sql<{ n: string }>`
      SELECT count(*) AS n FROM walflow.workflow_runs r WHERE NOT EXISTS (SELECT FROM walflow.events e WHERE e.id = r.event_id)`.execute(db);
    expect(orphans[0]?.n).toBe('0');

    await sql`UPDATE walflow.workflow_runs SET status = 'succeeded'`.execute(db);
    const result = await prune(db, { olderThan: tomorrow });
    expect(result.droppedPartitions).toContain(name);
    const { rows } = await sql<{ exists: boolean }>`SELECT to_regclass(${`walflow.${name}`}) IS NOT NULL AS exists`.execute(db);
    expect(rows[0]?.exists).toBe(false);
    expect((await counts())?.events).toBe('0');
  });

  it('keeps the events a JetStream sink has yet to publish, and prunes them once it has', async () => {
    // A sink's cursor: from here on every recorded event has its place in recording order.
    await sql`INSERT INTO walflow.sink_cursors (sink, recorded_xid, commit_lsn, tx_position, event_id)
              VALUES ('behind', pg_current_xact_id(), '0/0', 0, gen_random_uuid())`.execute(db);
    const old = [40, 39].map((days, n) => eventAt(new Date(Date.now() - days * DAY), 10 + n));
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: old, parked: [], checkpoint: null });
    await sql`UPDATE walflow.workflow_runs SET status = 'succeeded' WHERE event_id IN (${old[0]!.id}::uuid, ${old[1]!.id}::uuid)`.execute(db);
    const cutoff = new Date(Date.now() - 30 * DAY);
    expect(await prune(db, { olderThan: cutoff })).toMatchObject({ events: 0, keptForSinks: 2 });

    // The sink publishes them: its cursor moves past their recording.
    await sql`UPDATE walflow.sink_cursors SET recorded_xid = pg_current_xact_id() WHERE sink = 'behind'`.execute(db);
    expect(await prune(db, { olderThan: cutoff })).toMatchObject({ events: 2, keptForSinks: 0 });
    await sql`DELETE FROM walflow.sink_cursors WHERE sink = 'behind'`.execute(db);
  });
});
