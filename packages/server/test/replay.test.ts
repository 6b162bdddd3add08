import { randomUUID } from 'node:crypto';
import { parseLsn, type EventEnvelope, type WalflowDatabase } from '@walflow/core';
import { applyWorkflow, deleteWorkflow, Dispatcher, setWorkflowStatus } from '@walflow/executor';
import { createDatabase, migrate, recordAudit, replayRange, type ReplayOptions } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { Kysely, PostgresDialect, sql, type Transaction } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, COMMITTED_XID, holdOpen, silentLogger, waitForLockWait } from './fixtures.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
const base = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 - 2 * 3_600_000); // two hours ago, on the hour
const minute = (n: number) => new Date(base.getTime() + n * 60_000);
const events: EventEnvelope[] = [];

beforeAll(async () => {
  db = createDatabase(database.url, silentLogger);
  await migrate({ db, slotName: database.slotName, logger: silentLogger });
  // Six events a minute apart, recorded before any workflow existed: nothing fired live.
  for (let n = 0; n < 6; n++) {
    events.push({
      id: randomUUID(),
      type: n === 5 ? 'user.login' : 'policy.approved',
      tenantId: 'replay',
      aggregateType: 'policy',
      aggregateId: `p${n}`,
      payload: { n, premium: n * 1000 },
      metadata: {},
      committedAt: minute(n).toISOString(),
      commitLsn: parseLsn(`0/${(0x1000 + n).toString(16)}`),
      position: 0,
      xid: COMMITTED_XID,
    });
  }
  await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events, parked: [], checkpoint: null });
  await applyTestWorkflow(db, { tenant: 'replay', name: 'approved', trigger: { event: 'policy.*' }, cooldown: { seconds: 90 }, actions: [{ type: 'emit_event', event: 'x.y' }] });
});
afterAll(async () => {
  await db.destroy();
});

const options = (overrides: Partial<ReplayOptions>): ReplayOptions => ({
  db,
  logger: silentLogger,
  slotName: database.slotName,
  from: minute(1),
  to: minute(4),
  retentionDays: 30,
  ...overrides,
});

async function decisionsOf(replayId: string) {
  return db.selectFrom('walflow.decisions').select(['event_id', 'outcome']).where('replay_id', '=', replayId).orderBy('event_committed_at').execute();
}

describe('replay bounds typed to the microsecond', () => {
  it('take in and leave out events within one millisecond as typed, where a Date would round them to it', async () => {
    // One millisecond, half an hour after the other events, holding three commits.
    const millisecond = new Date(base.getTime() + 30 * 60_000 + 123).toISOString();
    const at = (micros: string) => millisecond.replace(/Z$/, `${micros}Z`);
    const inMillisecond: EventEnvelope[] = ['100', '500', '900'].map((micros, n) => ({
      ...events[0]!,
      id: randomUUID(),
      tenantId: 'replay-micro',
      committedAt: at(micros),
      commitLsn: parseLsn(`0/${(0x2000 + n).toString(16)}`),
    }));
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: inMillisecond, parked: [], checkpoint: null });
    const range = { from: at('400'), to: at('800') };
    const summary = await replayRange(options({ tenantId: 'replay-micro', from: new Date(range.from), to: new Date(range.to), rangeAsTyped: range, dryRun: true }));
    expect(summary.events).toBe(1);
    // Another range within the same millisecond is another replay.
    const other = { from: at('100'), to: at('400') };
    const otherSummary = await replayRange(options({ tenantId: 'replay-micro', from: new Date(other.from), to: new Date(other.to), rangeAsTyped: other, dryRun: true }));
    expect(otherSummary.events).toBe(1);
    expect(otherSummary.replayId).not.toBe(summary.replayId);
  });
});

describe('replay', () => {
  it('re-fires exactly the events in [from, to), in commit order, with guards in commit time', async () => {
    const summary = await replayRange(options({}));
    expect(summary).toMatchObject({ events: 3, dryRun: false, runsQueued: 2, workflows: { approved: { fired: 2, cooldown: 1 } } });
    // minute 1 fires, minute 2 is within its 90 s cooldown, minute 3 fires again; minute 4 is excluded.
    expect((await decisionsOf(summary.replayId)).map((d) => [d.event_id, d.outcome])).toEqual([
      [events[1]!.id, 'fired'],
      [events[2]!.id, 'cooldown'],
      [events[3]!.id, 'fired'],
    ]);
    const runs = await db.selectFrom('walflow.workflow_runs').select(['event_id', 'replay_id']).where('replay_id', '=', summary.replayId).execute();
    expect(runs.map((run) => run.event_id).sort()).toEqual([events[1]!.id, events[3]!.id].sort());
  });

  it('is idempotent: the same replay twice creates nothing the second time; --again does it once more', async () => {
    const before = await db.selectFrom('walflow.workflow_runs').select('id').execute();
    const second = await replayRange(options({}));
    expect(second.runsQueued).toBe(0);
    expect(await db.selectFrom('walflow.workflow_runs').select('id').execute()).toHaveLength(before.length);
    const again = await replayRange(options({ again: true }));
    expect(again.replayId).not.toBe(second.replayId);
    expect(again.runsQueued).toBe(2);
  });

  it('a pair has one decision, as a run or as a record: replaying under the same id adds neither beside the other', async () => {
    const outcomesOf = async (replayId: string) => (await decisionsOf(replayId)).map((decision) => decision.outcome);
    const runsOf = (replayId: string) => db.selectFrom('walflow.workflow_runs').select('id').where('replay_id', '=', replayId).execute();

    // Guarded first (minute 2 is in the cooldown), then the same id with guards ignored: no run beside the record.
    const guarded = await replayRange(options({ again: true }));
    expect(await replayRange(options({ replayId: guarded.replayId, ignoreGuards: true }))).toMatchObject({ runsQueued: 0 });
    expect(await outcomesOf(guarded.replayId)).toEqual(['fired', 'cooldown', 'fired']);
    expect(await runsOf(guarded.replayId)).toHaveLength(2);

    // Guards ignored first (all fire), then guarded: no cooldown record beside the run.
    const ignored = await replayRange(options({ again: true, ignoreGuards: true }));
    expect(await replayRange(options({ replayId: ignored.replayId }))).toMatchObject({ runsQueued: 0 });
    expect(await outcomesOf(ignored.replayId)).toEqual(['fired', 'fired', 'fired']);

    // A fired decision is its run.
    const fired = await db.selectFrom('walflow.decisions').select(['run_id', 'reason']).where('replay_id', '=', ignored.replayId).execute();
    expect(fired.map((decision) => decision.run_id).sort()).toEqual((await runsOf(ignored.replayId)).map((run) => run.id).sort());
    expect(new Set(fired.map((decision) => decision.reason))).toEqual(new Set(['replayed with guards ignored']));
  });

  it('with guards ignored, fires although the bypass, cooldown and rate-limit keys cannot be read from the events', async () => {
    const unreadable = 'event.payload.missing';
    const fired = await replayRange(
      options({
        dryRun: true,
        ignoreGuards: true,
        replayId: 'unreadable-guards',
        workflowDefinition: {
          tenant: 'replay',
          name: 'guarded-by-nothing-there',
          trigger: { event: 'policy.approved' },
          bypass: `${unreadable} == 'critical'`,
          cooldown: { seconds: 3600, key: unreadable },
          rateLimits: [{ limit: 1, periodSeconds: 3600, key: unreadable }],
          actions: [{ type: 'emit_event', event: 'x.y' }],
        },
      }),
    );
    expect(fired.workflows).toEqual({ 'guarded-by-nothing-there': { fired: fired.events } });
  });

  it('run again under the same id, decides only what it had not: its guard state counts each event once', async () => {
    const limited = await applyTestWorkflow(db, { tenant: 'replay', name: 'limited', trigger: { event: 'policy.*' }, rateLimits: [{ limit: 5, periodSeconds: 3600 }], actions: [{ type: 'emit_event', event: 'x.y' }] });
    const counted = async () => Number((await sql<{ n: string }>`SELECT coalesce(sum(count), 0) AS n FROM walflow.rate_limit_windows WHERE workflow_id = ${limited}`.execute(db)).rows[0]!.n);
    const first = await replayRange(options({ workflow: 'limited', again: true }));
    expect(first.workflows).toEqual({ limited: { fired: 3 } });
    expect(await counted()).toBe(3);
    // Interrupted or not, the same replay again: nothing to decide, nothing counted twice, nothing rate limited.
    expect(await replayRange(options({ workflow: 'limited', replayId: first.replayId }))).toMatchObject({ runsQueued: 0, workflows: {} });
    expect(await counted()).toBe(3);
    expect((await decisionsOf(first.replayId)).map((decision) => decision.outcome)).toEqual(['fired', 'fired', 'fired']);
    await db.deleteFrom('walflow.workflows').where('id', '=', limited).execute();
  });

  it('run twice at once under the same id, decides each pair once: the second waits and counts nothing again', async () => {
    const limited = await applyTestWorkflow(db, { tenant: 'replay', name: 'limited-twice', trigger: { event: 'policy.*' }, rateLimits: [{ limit: 5, periodSeconds: 3600 }], actions: [{ type: 'emit_event', event: 'x.y' }] });
    const counted = async () => Number((await sql<{ n: string }>`SELECT coalesce(sum(count), 0) AS n FROM walflow.rate_limit_windows WHERE workflow_id = ${limited}`.execute(db)).rows[0]!.n);
    // Both replays reach their guards' first write while this lock holds it back.
    const windows = await holdOpen(db, sql`LOCK TABLE walflow.rate_limit_windows IN SHARE ROW EXCLUSIVE MODE`);
    const twice = [0, 1].map(() => replayRange(options({ workflow: 'limited-twice', replayId: 'at-once' })));
    await waitFor('both replays to wait', async () => {
      const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`.execute(db);
      return rows[0]!.n >= 2;
    });
    await windows.release();
    const [first, second] = await Promise.all(twice);
    expect(first!.runsQueued + second!.runsQueued).toBe(3);
    expect(await counted()).toBe(3);
    await db.deleteFrom('walflow.workflows').where('id', '=', limited).execute();
  });

  it('run twice at once under the same id in a database whose sessions default to repeatable read, decides each pair once all the same', async () => {
    // Not createDatabase's pool, whose sessions are read committed whatever the default: a caller's own.
    const url = `${database.url}${database.url.includes('?') ? '&' : '?'}options=${encodeURIComponent('-c default_transaction_isolation=repeatable\\ read')}`;
    const repeatableRead = new Kysely<WalflowDatabase>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url }) }) });
    try {
      const { rows } = await sql<{ level: string }>`SELECT current_setting('transaction_isolation') AS level`.execute(repeatableRead);
      expect(rows[0]!.level).toBe('repeatable read');
      const limited = await applyTestWorkflow(db, { tenant: 'replay', name: 'limited-rr', trigger: { event: 'policy.*' }, rateLimits: [{ limit: 5, periodSeconds: 3600 }], actions: [{ type: 'emit_event', event: 'x.y' }] });
      const windows = await holdOpen(db, sql`LOCK TABLE walflow.rate_limit_windows IN SHARE ROW EXCLUSIVE MODE`);
      const twice = [0, 1].map(() => replayRange({ ...options({ workflow: 'limited-rr', replayId: 'at-once-rr' }), db: repeatableRead }));
      await waitFor('both replays to wait', async () => {
        const { rows: waiting } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`.execute(db);
        return waiting[0]!.n >= 2;
      });
      await windows.release();
      const [first, second] = await Promise.all(twice);
      expect(first!.runsQueued + second!.runsQueued).toBe(3);
      await db.deleteFrom('walflow.workflows').where('id', '=', limited).execute();
    } finally {
      await repeatableRead.destroy();
    }
  });

  it('typed as relative times, is the same replay when run again later: the events both ranges hold fire once', async () => {
    const typed = { from: '-125m', to: '-116m' };
    const first = await replayRange(options({ rangeAsTyped: typed, workflow: 'approved' }));
    // A minute later the same command covers a range one minute later.
    const later = await replayRange(options({ rangeAsTyped: typed, workflow: 'approved', from: minute(2), to: minute(5) }));
    expect(later.replayId).toBe(first.replayId);
    // Only minute 4 is new, and the replay's own cooldown remembers minute 3.
    expect(later.workflows).toEqual({ approved: { cooldown: 1 } });
    const runs = await db.selectFrom('walflow.workflow_runs').select('event_id').where('replay_id', '=', first.replayId).execute();
    expect(runs.map((run) => run.event_id).sort()).toEqual([events[1]!.id, events[3]!.id].sort());
  });

  it('is the same replay however its absolute times and its workflow are spelled; run again, it counts what it decided before', async () => {
    const approved = await db.selectFrom('walflow.workflows').select('id').where('tenant_id', '=', 'replay').where('name', '=', 'approved').executeTakeFirstOrThrow();
    // UTC to the minute, and the same instants with seconds, milliseconds and Z.
    const short = { from: minute(1).toISOString().slice(0, 16), to: minute(4).toISOString().slice(0, 16) };
    const first = await replayRange(options({ rangeAsTyped: short, workflow: 'approved' }));
    expect(first).toMatchObject({ runsQueued: 2, alreadyDecided: 0 });
    const respelled = await replayRange(options({ rangeAsTyped: { from: minute(1).toISOString(), to: minute(4).toISOString() }, workflow: approved.id }));
    expect(respelled).toMatchObject({ replayId: first.replayId, runsQueued: 0, workflows: {}, alreadyDecided: 3 });
  });

  it('dry run writes nothing and counts; it backtests a workflow that is not applied yet', async () => {
    const count = async () => Number((await sql<{ n: string }>`SELECT (SELECT count(*) FROM walflow.decisions) + (SELECT count(*) FROM walflow.workflow_runs) + (SELECT count(*) FROM walflow.workflows) AS n`.execute(db)).rows[0]?.n);
    const before = await count();
    const dry = await replayRange(options({ from: minute(0), to: minute(6), dryRun: true, ignoreGuards: true, replayId: 'dry' }));
    expect(dry).toMatchObject({ events: 6, runsQueued: 0, workflows: { approved: { fired: 5 } } });
    const backtest = await replayRange(
      options({
        from: minute(0),
        to: minute(6),
        dryRun: true,
        replayId: 'backtest',
        workflowDefinition: { tenant: 'replay', name: 'big-premiums', trigger: { event: 'policy.approved' }, condition: 'event.payload.premium >= 3000.0', actions: [{ type: 'emit_event', event: 'x.z' }] },
      }),
    );
    expect(backtest.workflows).toEqual({ 'big-premiums': { condition_false: 3, fired: 2 } });
    expect(await count()).toBe(before);
    // After the real replay of a range, its dry run still shows what it decides, not what is left to decide.
    const real = await replayRange(options({ replayId: 'real' }));
    const preview = await replayRange(options({ replayId: 'real', dryRun: true }));
    expect(preview).toMatchObject({ replayId: 'real-dry-run', workflows: real.workflows });
  });

  it('backtests a new version of an applied workflow without locking workflows: applies, pauses and failure counts go on meanwhile', async () => {
    const current = await db.selectFrom('walflow.workflows').select(['id', 'version']).where('tenant_id', '=', 'replay').where('name', '=', 'approved').executeTakeFirstOrThrow();
    // Another transaction holds the cooldown row the backtest reaches for first: the backtest waits there, its
    // transaction open, while the rest of the system carries on.
    const held = await holdOpen(db, sql`INSERT INTO walflow.cooldowns (workflow_id, key, until) VALUES (${current.id}::uuid, 'replay:held-dry-run:', '-infinity')`);
    const backtest = replayRange(
      options({
        from: minute(0),
        to: minute(6),
        dryRun: true,
        replayId: 'held',
        workflowDefinition: { tenant: 'replay', name: 'approved', trigger: { event: 'policy.*' }, cooldown: { seconds: 90 }, condition: 'event.payload.premium >= 2000.0', actions: [{ type: 'emit_event', event: 'x.y' }] },
      }),
    );
    await waitForLockWait(db, 'the backtest to wait for the cooldown row');
    // Each of these waited for the backtest's end, however long, when the backtest applied its candidate.
    const withoutWaiting = (statement: (trx: Transaction<WalflowDatabase>) => Promise<unknown>) =>
      db.transaction().execute(async (trx) => {
        await sql`SET LOCAL lock_timeout = '3s'`.execute(trx);
        await statement(trx);
      });
    await withoutWaiting((trx) => applyWorkflow(trx, { tenant: 'replay', name: 'meanwhile', trigger: { event: 'user.login' }, actions: [{ type: 'emit_event', event: 'x.w' }] }));
    await withoutWaiting((trx) => setWorkflowStatus(trx, 'replay', 'meanwhile', 'paused'));
    await withoutWaiting((trx) => sql`UPDATE walflow.workflows SET consecutive_failures = consecutive_failures + 1 WHERE id = ${current.id}::uuid`.execute(trx));
    await held.release();

    expect((await backtest).workflows).toEqual({ approved: { condition_false: 2, fired: 2, cooldown: 1 } });
    expect(await db.selectFrom('walflow.workflows').select(['id', 'version']).where('name', '=', 'approved').executeTakeFirstOrThrow()).toEqual(current);
    await deleteWorkflow(db, 'replay', 'meanwhile');
    await db.updateTable('walflow.workflows').set({ consecutive_failures: 0 }).where('id', '=', current.id).execute();
  });

  it('measures retention from the now its range was read against: a range from the very edge is accepted', async () => {
    // As `--from -30d` is read a moment before the replay starts.
    const now = new Date(Date.now() - 1000);
    const edge = new Date(now.getTime() - 30 * 86_400_000);
    await expect(replayRange(options({ from: edge, now, replayId: 'edge', dryRun: true }))).resolves.toMatchObject({ events: 4 });
    await expect(replayRange(options({ from: new Date(edge.getTime() - 1), now }))).rejects.toThrow(/no longer kept/);
  });

  it('refuses a range a prune has removed events from, whatever retention it was asked with', async () => {
    // A prune by a window shorter than the caller's WALFLOW_RETENTION_DAYS, by an operator or by the processes.
    const cutoff = new Date(Date.now() - 2 * 86_400_000);
    await recordAudit(db, { actor: 'someone', action: 'prune', arguments: { olderThan: cutoff.toISOString() } });
    try {
      await expect(replayRange(options({ from: new Date(cutoff.getTime() - 1), dryRun: true }))).rejects.toThrow(`events before ${cutoff.toISOString()} were pruned`);
      await expect(replayRange(options({ from: new Date(cutoff.getTime() + 1), replayId: 'after-prune', dryRun: true }))).resolves.toMatchObject({ dryRun: true });
    } finally {
      await db.deleteFrom('walflow.audit_log').where('action', '=', 'prune').where('actor', '=', 'someone').execute();
    }
  });

  it('filters by type and workflow, and refuses what it cannot do', async () => {
    const typed = await replayRange(options({ from: minute(0), to: minute(6), type: 'user.*', replayId: 'users', dryRun: true }));
    expect(typed.events).toBe(1);
    await expect(replayRange(options({ workflow: 'nope' }))).rejects.toThrow(/no workflow nope/);
    await expect(replayRange(options({ from: minute(4), to: minute(1) }))).rejects.toThrow(/the range is empty/);
    await expect(replayRange(options({ from: new Date(Date.now() - 40 * 86_400_000) }))).rejects.toThrow(/no longer kept/);
    await expect(replayRange(options({ workflowDefinition: {} }))).rejects.toThrow(/only in a dry run/);
  });

  it('counts same-named workflows of two tenants apart, naming the tenant only where names meet', async () => {
    const twin = (tenantId: string, n: number): EventEnvelope => ({ ...events[0]!, id: randomUUID(), tenantId, committedAt: minute(n).toISOString(), commitLsn: parseLsn(`0/${(0x2000 + n).toString(16)}`) });
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [twin('replay', 10), twin('replay-twin', 11)], parked: [], checkpoint: null });
    await applyTestWorkflow(db, { tenant: 'replay-twin', name: 'approved', trigger: { event: 'policy.*' }, actions: [{ type: 'emit_event', event: 'x.y' }] });
    const range = { from: minute(10), to: minute(12), dryRun: true };
    expect((await replayRange(options(range))).workflows).toEqual({ 'approved (tenant replay)': { fired: 1 }, 'approved (tenant replay-twin)': { fired: 1 } });
    // A workflow named like another's label: their counts add up, none is dropped.
    await applyTestWorkflow(db, { tenant: 'replay', name: 'approved (tenant replay-twin)', trigger: { event: 'policy.*' }, actions: [{ type: 'emit_event', event: 'x.y' }] });
    expect((await replayRange(options(range))).workflows).toEqual({ 'approved (tenant replay)': { fired: 1 }, 'approved (tenant replay-twin)': { fired: 2 } });
    expect((await replayRange(options({ ...range, tenantId: 'replay-twin' }))).workflows).toEqual({ approved: { fired: 1 } });
  });
});

describe('a replay of a rate-limited workflow', () => {
  it('counts its runs in windows of its own: the live quota is neither used up by it nor in its way', async () => {
    const workflowId = await applyTestWorkflow(db, { tenant: 'replay-quota', name: 'limited', trigger: { event: 'policy.approved' }, rateLimits: [{ limit: 2, periodSeconds: 86_400 }], actions: [{ type: 'emit_event', event: 'x.y' }] });
    const now = Date.now();
    const live = [0, 1].map((n): EventEnvelope => ({ ...events[n]!, id: randomUUID(), tenantId: 'replay-quota', committedAt: new Date(now - 60_000 + n).toISOString() }));
    const dispatched = await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: live, parked: [], checkpoint: null });
    expect(dispatched).toMatchObject({ runsQueued: 2 });
    // The live window is full: with the live windows, the replay's two would be rate-limited.
    const replayed = await replayRange(options({ from: new Date(now - 120_000), to: new Date(now), tenantId: 'replay-quota', replayId: 'quota' }));
    expect(replayed.workflows).toEqual({ limited: { fired: 2 } });
    // Nor did it count in the live windows, which hold the two live runs alone.
    const { rows } = await sql<{ count: number }>`
      SELECT sum(count)::int AS count FROM walflow.rate_limit_windows WHERE workflow_id = ${workflowId} AND key NOT LIKE 'replay:%'`.execute(db);
    expect(rows[0]!.count).toBe(2);
  });
});
