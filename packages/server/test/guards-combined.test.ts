import type { EventEnvelope, WalflowDatabase } from '@walflow/core';
import type { Dispatcher } from '@walflow/executor';
import { useTestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, approvalEvent, openDispatcher } from './fixtures.js';

/**
 * A workflow's guards together: every rate limit must let an event through before any window counts it, and a
 * cooldown starts only from an event that fired. Events are dispatched one batch each, at commit times of their
 * own, so each decision sees the guard rows the ones before left.
 */
const database = useTestDatabase();
let db: Kysely<WalflowDatabase>;
let dispatcher: Dispatcher;

beforeAll(async () => {
  ({ db, dispatcher } = await openDispatcher(database, []));
});
afterAll(() => db.destroy());

/** An approval of policy p1 for the tenant, committed at `at`. */
function approvedAt(tenant: string, at: string): EventEnvelope {
  return { ...approvalEvent(tenant, 1), committedAt: at };
}

/** Dispatches each event in a batch of its own; returns each one's decision. */
async function decide(events: EventEnvelope[]): Promise<{ outcome: string; detail: Record<string, unknown> }[]> {
  for (const event of events) await dispatcher.dispatch({ events: [event], parked: [], checkpoint: null });
  const rows = await db.selectFrom('walflow.decisions').select(['event_id', 'outcome', 'detail']).where('event_id', 'in', events.map((event) => event.id)).execute();
  const byEvent = new Map(rows.map((row) => [row.event_id, row]));
  return events.map((event) => {
    const row = byEvent.get(event.id)!;
    return { outcome: row.outcome, detail: row.detail };
  });
}

async function windowCounts(workflowId: string): Promise<{ limit_index: number; count: number }[]> {
  const { rows } = await sql<{ limit_index: number; count: number }>`
    SELECT limit_index, sum(count)::int AS count FROM walflow.rate_limit_windows
     WHERE workflow_id = ${workflowId} GROUP BY limit_index ORDER BY limit_index`.execute(db);
  return rows;
}

describe('two rate limits on one workflow', () => {
  it('limits by the one reached, whichever it is, and counts an event in no window when one limit stops it', async () => {
    const workflowId = await applyTestWorkflow(db, {
      tenant: 'two-limits',
      name: 'notify',
      trigger: { event: 'policy.approved' },
      // The second limit is the narrower: a check of the first alone lets the second event through.
      rateLimits: [
        { limit: 10, periodSeconds: 86_400 },
        { limit: 1, periodSeconds: 60 },
      ],
      actions: [{ type: 'emit_event', event: 'x.y' }],
    });
    const decided = await decide([
      approvedAt('two-limits', '2026-03-02T12:00:01.000Z'),
      approvedAt('two-limits', '2026-03-02T12:00:02.000Z'),
      approvedAt('two-limits', '2026-03-02T12:01:30.000Z'),
    ]);
    expect(decided.map((decision) => decision.outcome)).toEqual(['fired', 'rate_limited', 'fired']);
    expect(decided[1]!.detail).toMatchObject({ limit: 1, periodSeconds: 60 });
    // The limited event used up none of the day's ten.
    expect(await windowCounts(workflowId)).toEqual([
      { limit_index: 0, count: 2 },
      { limit_index: 1, count: 2 },
    ]);
  });
});

describe('a cooldown beside a rate limit', () => {
  it('is started only by an event that fired: a rate-limited one neither fires nor extends it', async () => {
    const workflowId = await applyTestWorkflow(db, {
      tenant: 'cooldown-and-limit',
      name: 'notify',
      trigger: { event: 'policy.approved' },
      cooldown: { seconds: 60 },
      rateLimits: [{ limit: 1, periodSeconds: 3600 }],
      actions: [{ type: 'emit_event', event: 'x.y' }],
    });
    const decided = await decide([
      approvedAt('cooldown-and-limit', '2026-03-02T12:00:00.000Z'),
      approvedAt('cooldown-and-limit', '2026-03-02T12:00:30.000Z'),
      approvedAt('cooldown-and-limit', '2026-03-02T12:01:30.000Z'),
      approvedAt('cooldown-and-limit', '2026-03-02T12:02:00.000Z'),
    ]);
    expect(decided.map((decision) => decision.outcome)).toEqual(['fired', 'cooldown', 'rate_limited', 'rate_limited']);
    // Had the limited event at 12:01:30 started the cooldown, the last one would be in cooldown, not rate-limited.
    const cooldown = await db.selectFrom('walflow.cooldowns').select(sql<string>`to_json(until) #>> '{}'`.as('until')).where('workflow_id', '=', workflowId).executeTakeFirstOrThrow();
    expect(new Date(cooldown.until).toISOString()).toBe('2026-03-02T12:01:00.000Z');
    expect(await windowCounts(workflowId)).toEqual([{ limit_index: 0, count: 1 }]);
  });
});
