import type { EventEnvelope, WalflowDatabase } from '@walflow/core';
import type { Dispatcher } from '@walflow/executor';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, approvalEvent, holdOpen, openDispatcher, waitForLockWait } from './fixtures.js';

const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
let dispatcher: Dispatcher;

beforeAll(async () => {
  ({ db, dispatcher } = await openDispatcher(database, []));
});
afterAll(async () => {
  await db.destroy();
});

const workflow = (tenant: string) => ({ tenant, name: 'guarded', trigger: { event: 'policy.approved' }, actions: [{ type: 'emit_event' as const, event: 'x.y' }] });

async function outcomeOf(event: EventEnvelope): Promise<string> {
  await dispatcher.dispatch({ events: [event], parked: [], checkpoint: null });
  const decision = await db.selectFrom('walflow.decisions').select('outcome').where('event_id', '=', event.id).executeTakeFirstOrThrow();
  return decision.outcome;
}

describe('guard state when the workflow changes', () => {
  it("moves a cooldown's end by the change of its seconds, and keeps none once the workflow has no cooldown", async () => {
    const id = await applyTestWorkflow(db, { ...workflow('cooling'), cooldown: { seconds: 86_400 } });
    const first = approvalEvent('cooling', 1);
    expect(await outcomeOf(first)).toBe('fired');
    const cooldownSeconds = async () => {
      const { rows } = await sql<{ seconds: number }>`
        SELECT extract(epoch FROM until - ${first.committedAt}::timestamptz)::float8 AS seconds FROM walflow.cooldowns WHERE workflow_id = ${id}`.execute(db);
      return rows.map((row) => row.seconds);
    };
    expect(await cooldownSeconds()).toEqual([86_400]);

    await applyTestWorkflow(db, { ...workflow('cooling'), cooldown: { seconds: 60 } });
    expect(await cooldownSeconds()).toEqual([60]);
    const twoMinutesLater = { ...approvalEvent('cooling', 2), committedAt: new Date(Date.parse(first.committedAt) + 120_000).toISOString() };
    expect(await outcomeOf(twoMinutesLater)).toBe('fired');

    await applyTestWorkflow(db, workflow('cooling'));
    expect(await cooldownSeconds()).toEqual([]);
  });

  it('keeps no cooldown of a key the workflow no longer uses, and converts a cooldown once when two applies change it at once', async () => {
    const id = await applyTestWorkflow(db, { ...workflow('rekeyed'), cooldown: { seconds: 60, key: 'event.payload.n' } });
    const first = approvalEvent('rekeyed', 1);
    expect(await outcomeOf(first)).toBe('fired');
    /** Each cooldown's end, in seconds after the commit of the event that started it. */
    const cooldowns = async (startedBy: EventEnvelope) => {
      const { rows } = await sql<{ seconds: number }>`
        SELECT extract(epoch FROM until - ${startedBy.committedAt}::timestamptz)::float8 AS seconds FROM walflow.cooldowns WHERE workflow_id = ${id}`.execute(db);
      return rows.map((row) => row.seconds);
    };
    expect(await cooldowns(first)).toEqual([60]);
    // Another key: the old key's value 1 would otherwise hold back the new key's value 1.
    await applyTestWorkflow(db, { ...workflow('rekeyed'), cooldown: { seconds: 60, key: 'event.aggregateId.size()' } });
    expect(await cooldowns(first)).toEqual([]);
    const second = approvalEvent('rekeyed', 2);
    expect(await outcomeOf(second)).toBe('fired');
    expect(await cooldowns(second)).toEqual([60]);

    // The same change applied twice at once: the second waits for the first and finds nothing left to convert.
    const longer = { ...workflow('rekeyed'), cooldown: { seconds: 3600, key: 'event.aggregateId.size()' } };
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let firstApplied = false;
    const firstApply = db.transaction().execute(async (trx) => {
      await applyTestWorkflow(trx, longer);
      firstApplied = true;
      await released;
    });
    try {
      await waitFor('the first apply to convert the cooldown', () => firstApplied);
      const secondApply = applyTestWorkflow(db, longer);
      await waitForLockWait(db, 'the second apply to wait for the first');
      release();
      await Promise.all([firstApply, secondApply]);
    } finally {
      release();
    }
    expect(await cooldowns(second)).toEqual([3600]);
  });

  it('counts a rate limit afresh when its period or key changes, and goes on counting when only its limit does', async () => {
    const limited = (limit: number, periodSeconds: number) => applyTestWorkflow(db, { ...workflow('limited'), rateLimits: [{ limit, periodSeconds }] });
    // In the first hour of today (UTC), where the day's window and the hour's start at the same instant.
    const midnight = Math.floor(Date.now() / 86_400_000) * 86_400_000;
    const event = (n: number) => ({ ...approvalEvent('limited', n), committedAt: new Date(midnight + n * 1000).toISOString() });
    await limited(1, 86_400);
    expect(await outcomeOf(event(1))).toBe('fired');
    expect(await outcomeOf(event(2))).toBe('rate_limited');
    // The hour's window is not the day's, although both start at midnight: its count starts at 0.
    await limited(1, 3600);
    expect(await outcomeOf(event(3))).toBe('fired');
    await limited(2, 3600);
    expect(await outcomeOf(event(4))).toBe('fired');
    expect(await outcomeOf(event(5))).toBe('rate_limited');
  });

  it('waits for the recordings in flight before it changes guard state, and changes nothing when the guards stay', async () => {
    const id = await applyTestWorkflow(db, { ...workflow('in-flight'), cooldown: { seconds: 600 } });
    expect(await outcomeOf(approvalEvent('in-flight', 1))).toBe('fired');
    // A recording transaction in flight holds the recording lock shared, as walflow.recording_xid() takes it.
    const recording = await holdOpen(db, sql`SELECT walflow.recording_xid()`);
    try {
      // An apply that leaves the guards as they are does not wait for it.
      await applyTestWorkflow(db, { ...workflow('in-flight'), cooldown: { seconds: 600 }, condition: 'true' });
      const applying = applyTestWorkflow(db, { ...workflow('in-flight'), cooldown: { seconds: 60 } });
      await waitForLockWait(db, 'the apply to wait for the recording in flight', 'LOCK TABLE walflow.sink_cursors%');
      const { rows } = await sql<{ seconds: number }>`SELECT extract(epoch FROM until - now())::float8 AS seconds FROM walflow.cooldowns WHERE workflow_id = ${id}`.execute(db);
      expect(rows[0]!.seconds).toBeGreaterThan(300);
      await recording.release();
      await applying;
    } finally {
      await recording.release();
    }
    const { rows } = await sql<{ seconds: number }>`SELECT extract(epoch FROM until - now())::float8 AS seconds FROM walflow.cooldowns WHERE workflow_id = ${id}`.execute(db);
    expect(rows[0]!.seconds).toBeLessThan(60);
  });

  it('has a batch that waited behind such an apply decide with the new definition, which the guard state now means', async () => {
    const id = await applyTestWorkflow(db, { ...workflow('behind-apply'), cooldown: { seconds: 86_400 } });
    const first = approvalEvent('behind-apply', 1);
    expect(await outcomeOf(first)).toBe('fired');
    const recording = await holdOpen(db, sql`SELECT walflow.recording_xid()`, { commit: true });
    let applying: Promise<unknown> | undefined;
    let dispatching: Promise<unknown> | undefined;
    const later = { ...approvalEvent('behind-apply', 2), committedAt: new Date(Date.parse(first.committedAt) + 120_000).toISOString() };
    try {
      applying = applyTestWorkflow(db, { ...workflow('behind-apply'), cooldown: { seconds: 60 } });
      await waitForLockWait(db, 'the apply to wait for the recording in flight', 'LOCK TABLE walflow.sink_cursors%');
      // The next batch's statement starts now, before the apply commits, and waits for the recording lock behind it.
      dispatching = dispatcher.dispatch({ events: [later], parked: [], checkpoint: null });
      await waitFor('the batch to wait behind the apply', async () => {
        const { rows } = await sql<{ n: number }>`
          SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO walflow.events%'`.execute(db);
        return rows[0]!.n > 0;
      });
    } finally {
      await recording.release();
      await applying;
      await dispatching;
    }
    const decision = await db.selectFrom('walflow.decisions').select(['outcome', 'workflow_version']).where('event_id', '=', later.id).executeTakeFirstOrThrow();
    expect(decision).toEqual({ outcome: 'fired', workflow_version: 2 });
    const { rows } = await sql<{ seconds: number }>`
      SELECT extract(epoch FROM until - ${later.committedAt}::timestamptz)::float8 AS seconds FROM walflow.cooldowns WHERE workflow_id = ${id}`.execute(db);
    expect(rows.map((row) => row.seconds)).toEqual([60]);
  });
});
