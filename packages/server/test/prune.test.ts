import { randomUUID } from 'node:crypto';
import { AdvisoryLockClass, parseLsn, type EventEnvelope, type WalflowDatabase } from '@walflow/core';
import { Dispatcher } from '@walflow/executor';
import { createDatabase, migrate, processRetentionDays, prune, prunedBefore, replayRange, RETENTION_ACTOR, retryDeadRun, startRetention } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, holdOpen, silentLogger, waitForLockWait } from './fixtures.js';

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
    const pruned = { droppedPartitions: [], events: 2, decisions: 5, runs: 2, deadLetters: 0, auditEntries: 1, guardRows: 0, keptForSinks: 0 };
    expect(await prune(db, { olderThan: cutoff, dryRun: true })).toEqual(pruned);
    expect(await counts()).toEqual({ events: '6', decisions: '12', runs: '6', queued: '4' });

    expect(await prune(db, { olderThan: cutoff, batchSize: 2 })).toEqual(pruned);
    // The audit log is kept a year, longer than events.
    expect((await db.selectFrom('walflow.audit_log').select('action').execute()).map((row) => row.action)).toEqual(['kept']);
    const left = await db.selectFrom('walflow.events').select('id').execute();
    expect(left.map((row) => row.id).sort()).toEqual([...young, old[2]!].map((event) => event.id).sort());
    expect(await counts()).toEqual({ events: '4', decisions: '7', runs: '4', queued: '4' });
  });

  it('keeps the fired decision a run queued before migration 0019 holds among the records while the run is unfinished', async () => {
    await applyTestWorkflow(db, { tenant: 'prune-0019', name: 'w', trigger: { event: 'policy.approved' }, actions: [{ type: 'emit_event', event: 'x.y' }] });
    const event = { ...eventAt(new Date(Date.now() - 45 * DAY), 60), tenantId: 'prune-0019' };
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [event], parked: [], checkpoint: null });
    // As migration 0019 left such a run: its decision a record naming it, the run without a reason of its own.
    await sql`
      WITH run AS (UPDATE walflow.workflow_runs SET decision_reason = NULL, decision_detail = NULL WHERE event_id = ${event.id}::uuid RETURNING *)
      INSERT INTO walflow.decision_records (workflow_id, workflow_version, tenant_id, event_id, event_committed_at, replay_id, outcome, reason, run_id)
      SELECT workflow_id, workflow_version, tenant_id, event_id, event_committed_at, replay_id, 'fired', 'queued before 0019', id FROM run`.execute(db);
    const decisions = () => db.selectFrom('walflow.decisions').select(['outcome', 'reason']).where('event_id', '=', event.id).execute();
    const cutoff = new Date(Date.now() - 30 * DAY);
    await prune(db, { olderThan: cutoff });
    expect(await decisions()).toEqual([{ outcome: 'fired', reason: 'queued before 0019' }]);
    // Once the run has finished, both go.
    await sql`UPDATE walflow.workflow_runs SET status = 'succeeded' WHERE event_id = ${event.id}::uuid`.execute(db);
    await prune(db, { olderThan: cutoff });
    expect(await decisions()).toEqual([]);
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

describe('prune beside a replay or a retry', () => {
  const dispatcher = () => new Dispatcher({ db, slotName: database.slotName, logger: silentLogger });

  /** Recorded events whose runs have all finished, as prune finds them when they are old enough. */
  async function finishedEvents(committedAt: Date[]): Promise<EventEnvelope[]> {
    const events = committedAt.map((at, n) => eventAt(at, 20 + n));
    await dispatcher().dispatch({ events, parked: [], checkpoint: null });
    await sql`UPDATE walflow.workflow_runs SET status = 'succeeded', finished_at = now() WHERE status IN ('queued', 'running')`.execute(db);
    return events;
  }

  /** A replay of `events` whose transaction stays open, runs queued and uncommitted, until committed. */
  async function replayHeldOpen(events: EventEnvelope[], replayId: string): Promise<{ commit(): Promise<number> }> {
    let commit!: () => void;
    let replayed!: (runs: number) => void;
    const queued = new Promise<number>((resolve) => (replayed = resolve));
    const open = db.transaction().execute(async (trx) => {
      replayed((await dispatcher().replay(trx, events, { replayId })).runsQueued);
      await new Promise<void>((resolve) => (commit = resolve));
    });
    const runs = await queued;
    return { commit: () => (commit(), open.then(() => runs)) };
  }

  const runsWithoutEvent = async (): Promise<number> => {
    const { rows } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM walflow.workflow_runs r
       WHERE r.status IN ('queued', 'running') AND NOT EXISTS (SELECT FROM walflow.events e WHERE e.id = r.event_id)`.execute(db);
    return rows[0]!.n;
  };

  it('passes over, in a replay, an event pruned after its page was read', async () => {
    const [event] = await finishedEvents([new Date(Date.now() - 45 * DAY)]);
    await prune(db, { olderThan: new Date(Date.now() - 30 * DAY) });
    const result = await db.transaction().execute((trx) => dispatcher().replay(trx, [event!], { replayId: 'after-prune' }));
    expect(result).toMatchObject({ events: 0, runsQueued: 0 });
    expect(await runsWithoutEvent()).toBe(0);
  });

  it('keeps an old event whose replayed run commits while prune deletes it', async () => {
    const [event] = await finishedEvents([new Date(Date.now() - 45 * DAY)]);
    const replay = await replayHeldOpen([event!], 'beside-prune');
    const pruning = prune(db, { olderThan: new Date(Date.now() - 30 * DAY) });
    await waitForLockWait(db, 'prune to wait for the replay');
    expect(await replay.commit()).toBe(1);
    await pruning;
    expect(await db.selectFrom('walflow.events').select('id').where('id', '=', event!.id).execute()).toHaveLength(1);
    expect(await runsWithoutEvent()).toBe(0);
  });

  it("keeps the day's partition when a replayed run of one of its events commits while prune drops it", async () => {
    // An earlier test dropped today's partition.
    await sql`SELECT walflow.ensure_event_partitions()`.execute(db);
    const [event] = await finishedEvents([new Date()]);
    const tomorrow = new Date(Math.ceil(Date.now() / DAY) * DAY);
    const replay = await replayHeldOpen([event!], 'beside-drop');
    const pruning = prune(db, { olderThan: tomorrow });
    await waitForLockWait(db, 'prune to wait for the replay');
    expect(await replay.commit()).toBe(1);
    const result = await pruning;
    expect(result.droppedPartitions).not.toContain(`events_${new Date().toISOString().slice(0, 10).replaceAll('-', '')}`);
    expect(await db.selectFrom('walflow.events').select('id').where('id', '=', event!.id).execute()).toHaveLength(1);
    expect(await runsWithoutEvent()).toBe(0);
  });

  it("keeps the day's partition when an event a sink has yet to publish is recorded into it while prune drops it", async () => {
    await sql`SELECT walflow.ensure_event_partitions()`.execute(db);
    await sql`INSERT INTO walflow.sink_cursors (sink, recorded_xid, commit_lsn, tx_position, event_id)
              VALUES ('dropping', pg_current_xact_id(), '0/0', 0, gen_random_uuid())`.execute(db);
    // A dispatch recording an event that matches no workflow, its transaction still open when prune looks.
    const id = randomUUID();
    let commit!: () => void;
    let recorded!: () => void;
    const inserted = new Promise<void>((resolve) => (recorded = resolve));
    const dispatch = db.transaction().execute(async (trx) => {
      await sql`INSERT INTO walflow.events (id, event_type, tenant_id, payload, committed_at, commit_lsn, tx_position, xid, recorded_xid)
                VALUES (${id}::uuid, 'sink.pending', 'prune', '{}', now() - interval '1 day', '0/1', 0, 1, pg_current_xact_id())`.execute(trx);
      recorded();
      await new Promise<void>((resolve) => (commit = resolve));
    });
    await inserted;
    try {
      // Yesterday's partition, which holds nothing else prune must keep.
      const today = new Date(Math.floor(Date.now() / DAY) * DAY);
      const yesterday = `events_${new Date(today.getTime() - DAY).toISOString().slice(0, 10).replaceAll('-', '')}`;
      const pruning = prune(db, { olderThan: today });
      await waitForLockWait(db, 'prune to wait for the dispatch');
      commit();
      await dispatch;
      const result = await pruning;
      expect(result.droppedPartitions).not.toContain(yesterday);
      expect(await db.selectFrom('walflow.events').select('id').where('id', '=', id).execute()).toHaveLength(1);
    } finally {
      commit();
      await sql`DELETE FROM walflow.sink_cursors WHERE sink = 'dropping'`.execute(db);
    }
  });

  it('keeps a dead run that is queued again while prune deletes it', async () => {
    const [event] = await finishedEvents([new Date(Date.now() - 45 * DAY)]);
    const run = await db.updateTable('walflow.workflow_runs').set({ status: 'dead' }).where('event_id', '=', event!.id).returning('id').executeTakeFirstOrThrow();
    // The event stays for a run of a replay, still queued; the dead run is prune's to delete, until it is retried.
    await (await replayHeldOpen([event!], 'keeps-the-event')).commit();
    // As `walflow dead-runs retry` does, in a transaction that commits once prune's delete has chosen the run.
    const retry = await holdOpen(db, sql`UPDATE walflow.workflow_runs SET status = 'queued', next_attempt_at = now(), finished_at = NULL WHERE id = ${run.id}`, { commit: true });
    const pruning = prune(db, { olderThan: new Date(Date.now() - 30 * DAY) });
    await waitForLockWait(db, 'prune to wait for the retry', '%DELETE FROM walflow.workflow_runs%');
    await retry.release();
    await pruning;
    expect(await db.selectFrom('walflow.workflow_runs').select('status').where('id', '=', run.id).execute()).toEqual([{ status: 'queued' }]);
  });

  it('refuses to retry a dead run whose event is gone, saying so', async () => {
    const [event] = await finishedEvents([new Date(Date.now() - 45 * DAY)]);
    const run = await db.updateTable('walflow.workflow_runs').set({ status: 'dead' }).where('event_id', '=', event!.id).returning('id').executeTakeFirstOrThrow();
    await db.deleteFrom('walflow.events').where('id', '=', event!.id).execute();
    await expect(retryDeadRun(db, run.id)).rejects.toThrow(/cannot be retried: its event was pruned/);
    expect(await runsWithoutEvent()).toBe(0);
  });
});

describe('retention', () => {
  const retentionPrunes = async () =>
    (await db.selectFrom('walflow.audit_log').select(['at', 'arguments']).where('actor', '=', RETENTION_ACTOR).where('action', '=', 'prune').execute()).length;

  it('prunes soon after the start when no retention prune ran within a day, records it, and not again within the day', async () => {
    await sql`DELETE FROM walflow.audit_log`.execute(db);
    // The last one ran 25 hours ago, under another process: a process started since is due at its first check.
    await sql`INSERT INTO walflow.audit_log (at, actor, action) VALUES (now() - interval '25 hours', ${RETENTION_ACTOR}, 'prune')`.execute(db);
    const old = eventAt(new Date(Date.now() - 45 * DAY), 1);
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [old], parked: [], checkpoint: null });
    await sql`UPDATE walflow.workflow_runs SET status = 'succeeded', finished_at = now() WHERE event_id = ${old.id}::uuid`.execute(db);
    let leading = false;
    const retention = startRetention({ db, logger: silentLogger, retentionDays: 30, leading: () => leading, firstCheckMs: 20, checkMs: 50 });
    try {
      // Only the leader prunes.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(await retentionPrunes()).toBe(1);
      leading = true;
      await waitFor('the retention prune', async () => (await retentionPrunes()) === 2);
      expect(await db.selectFrom('walflow.events').select('id').where('id', '=', old.id).execute()).toEqual([]);
      // Its audit entry is what a bare `walflow prune` and a replay read: the window, and where events went.
      expect(await processRetentionDays(db)).toBe(30);
      const before = (await prunedBefore(db))!;
      expect(Math.abs(before.getTime() - (Date.now() - 30 * DAY))).toBeLessThan(60_000);
      const replay = { db, logger: silentLogger, slotName: database.slotName, to: new Date(), retentionDays: 365, dryRun: true };
      await expect(replayRange({ ...replay, from: new Date(before.getTime() - 1) })).rejects.toThrow(/were pruned/);
      // Within the day, the checks that follow find it done.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await retentionPrunes()).toBe(2);
    } finally {
      await retention.stop();
    }
  });

  it('stops the prune under way when the process stops, recording no prune, so the next start prunes the rest', async () => {
    await sql`DELETE FROM walflow.audit_log`.execute(db);
    await applyTestWorkflow(db, { tenant: 'prune', name: 'w', trigger: { event: 'policy.approved' }, actions: [{ type: 'emit_event', event: 'x.y' }] });
    const old = eventAt(new Date(Date.now() - 45 * DAY), 2);
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [old], parked: [], checkpoint: null });
    await sql`UPDATE walflow.workflow_runs SET status = 'succeeded', finished_at = now() WHERE event_id = ${old.id}::uuid`.execute(db);
    // The prune meets a lock on the old run and waits for it there, midway.
    const held = await holdOpen(db, sql`SELECT id FROM walflow.workflow_runs WHERE event_id = ${old.id}::uuid FOR UPDATE`);
    const retention = startRetention({ db, logger: silentLogger, retentionDays: 30, leading: () => true, firstCheckMs: 20, checkMs: 60_000 });
    let stopped = false;
    try {
      await waitForLockWait(db, 'the prune to wait midway');
      const stopping = retention.stop().then(() => (stopped = true));
      await new Promise((resolve) => setTimeout(resolve, 200));
      // The statement under way is let finish; the prune goes no further.
      expect(stopped).toBe(false);
      await held.release();
      await stopping;
    } finally {
      await held.release();
      await retention.stop();
    }
    expect(await retentionPrunes()).toBe(0);
  });

  it('takes turns with any other prune: a second one at the same time is refused as prune_busy', async () => {
    const held = await holdOpen(db, sql`SELECT pg_advisory_xact_lock(${AdvisoryLockClass.prune}, 0)`);
    try {
      await expect(prune(db, { olderThan: new Date(Date.now() - 30 * DAY) })).rejects.toMatchObject({ code: 'prune_busy' });
      // A dry run changes nothing and takes no turn.
      await expect(prune(db, { olderThan: new Date(Date.now() - 30 * DAY), dryRun: true })).resolves.toMatchObject({ events: expect.any(Number) });
    } finally {
      await held.release();
    }
    await expect(prune(db, { olderThan: new Date(Date.now() - 30 * DAY) })).resolves.toMatchObject({ events: expect.any(Number) });
  });

  it('deletes cooldowns and rate-limit windows whose time was over before the cut, walking them in batches, and keeps the rest', async () => {
    const workflow = await applyTestWorkflow(db, {
      tenant: 'prune',
      name: 'guarded',
      trigger: { event: 'policy.approved' },
      cooldown: { seconds: 3600 },
      rateLimits: [{ limit: 5, periodSeconds: 86_400 }, { limit: 5, periodSeconds: 3600 }],
      actions: [{ type: 'emit_event', event: 'x.y' }],
    });
    await sql`TRUNCATE walflow.cooldowns, walflow.rate_limit_windows`.execute(db);
    const cutoff = new Date(Date.now() - 30 * DAY);
    const at = (hoursFromCut: number) => new Date(cutoff.getTime() + hoursFromCut * 3_600_000);
    const key = (name: string) => `${name} "quoted" \\ ü`;
    const cooldowns: [string, Date | '-infinity', boolean][] = [
      [key('ended'), at(-24), false],
      [key('never began'), '-infinity', false],
      [key('ended after the cut'), at(24 * 20), true],
      [key('running'), new Date(Date.now() + 3_600_000), true],
    ];
    for (const [name, until] of cooldowns) await sql`INSERT INTO walflow.cooldowns (workflow_id, key, until) VALUES (${workflow}, ${name}, ${until})`.execute(db);
    const gone = randomUUID();
    const windows: [string, number, string, Date, boolean][] = [
      [workflow, 0, key('a'), at(-48), false], // a day, over a day before the cut
      [workflow, 0, key('a'), at(-12), true], // a day, still open at the cut
      [workflow, 1, key('a'), at(-2), false], // an hour, over before the cut
      [workflow, 1, key('b'), at(1), true],
      [workflow, 5, key('a'), at(-0.1), false], // a limit the workflow no longer has
      [gone, 0, key('a'), at(-0.1), false], // a workflow that is gone
    ];
    for (const [id, index, name, start] of windows) {
      await sql`INSERT INTO walflow.rate_limit_windows (workflow_id, limit_index, key, window_start, count) VALUES (${id}, ${index}, ${name}, ${start}, 3)`.execute(db);
    }
    const expired = cooldowns.filter(([, , kept]) => !kept).length + windows.filter(([, , , , kept]) => !kept).length;

    expect(await prune(db, { olderThan: cutoff, dryRun: true })).toMatchObject({ guardRows: expired });
    // A row a dispatch holds while it checks it is passed over, not waited for; the next prune deletes it.
    const checking = await holdOpen(db, sql`SELECT FROM walflow.cooldowns WHERE key = ${key('ended')} FOR UPDATE`);
    try {
      expect(await prune(db, { olderThan: cutoff, batchSize: 2 })).toMatchObject({ guardRows: expired - 1 });
    } finally {
      await checking.release();
    }
    expect(await prune(db, { olderThan: cutoff, batchSize: 2 })).toMatchObject({ guardRows: 1 });
    const keptCooldowns = await sql<{ key: string }>`SELECT key FROM walflow.cooldowns ORDER BY key`.execute(db);
    expect(keptCooldowns.rows.map((row) => row.key)).toEqual(cooldowns.filter(([, , kept]) => kept).map(([name]) => name).sort());
    const keptWindows = await sql<{ limit_index: number; window_start: Date }>`SELECT limit_index, window_start FROM walflow.rate_limit_windows ORDER BY window_start`.execute(db);
    expect(keptWindows.rows.map((row) => [row.limit_index, row.window_start.getTime()])).toEqual(
      windows.filter(([, , , , kept]) => kept).map(([, index, , start]) => [index, start.getTime()]),
    );
  });
});
