import type { EventEnvelope, WalflowDatabase } from '@walflow/core';
import { sql, type Transaction } from 'kysely';
import { chainReplayOf, type Decision, type GuardRequest, type IndexedWorkflow } from './decide.js';

/**
 * Cooldowns and rate limits, kept in rows updated inside the dispatcher's transaction and counted in event
 * commit time. Rows are locked while they are checked and taken, so concurrent dispatchers (live and replay)
 * never let more runs through than a limit allows.
 */
export async function applyGuards(
  trx: Transaction<WalflowDatabase>,
  workflow: IndexedWorkflow,
  event: EventEnvelope,
  guards: GuardRequest,
): Promise<Decision> {
  const { cooldown, rateLimits } = workflow.definition;
  // Cooldowns are compared in PostgreSQL, to the microsecond of the commit.
  if (guards.bypassed) {
    if (cooldown) await startCooldown(trx, workflow.id, guards.cooldownKey, event.committedAt, cooldown.seconds);
    return firedDecision(workflow, guards.bypassed);
  }
  if (cooldown) {
    const until = await cooldownHolding(trx, workflow.id, guards.cooldownKey, event.committedAt);
    if (until !== undefined) {
      return {
        outcome: 'cooldown',
        reason: `in cooldown until ${until}`,
        detail: { until, key: guards.cooldownKey, seconds: cooldown.seconds },
      };
    }
  }
  if (rateLimits.length > 0) {
    // Windows start on whole seconds, so the commit's millisecond places it in its window exactly.
    const committedAt = new Date(event.committedAt);
    const windows = rateLimits.map((limit, index) => ({
      index,
      limit: limit.limit,
      periodSeconds: limit.periodSeconds,
      key: guards.rateLimitKeys[index] ?? '',
      windowStart: new Date(Math.floor(committedAt.getTime() / (limit.periodSeconds * 1000)) * limit.periodSeconds * 1000),
    }));
    const counts = await lockWindows(trx, workflow.id, windows);
    const exceeded = windows.find((window, position) => (counts[position] ?? 0) >= window.limit);
    if (exceeded) {
      return {
        outcome: 'rate_limited',
        reason: `rate limit of ${exceeded.limit} per ${exceeded.periodSeconds} s reached`,
        detail: { limit: exceeded.limit, periodSeconds: exceeded.periodSeconds, key: exceeded.key, windowStart: exceeded.windowStart.toISOString() },
      };
    }
    for (const window of windows) {
      await sql`UPDATE walflow.rate_limit_windows SET count = count + 1
                 WHERE workflow_id = ${workflow.id} AND limit_index = ${window.index} AND key = ${window.key} AND window_start = ${window.windowStart}`.execute(trx);
    }
  }
  if (cooldown) await startCooldown(trx, workflow.id, guards.cooldownKey, event.committedAt, cooldown.seconds);
  return firedDecision(workflow, guards.bypassed);
}

/**
 * The decision once no cooldown or rate limit stands in the way. A workflow without either (most of them) needs
 * nothing more: the dispatcher takes it from here without a round through applyGuards' promise.
 */
export function firedDecision(workflow: IndexedWorkflow, bypassed: boolean): Decision {
  return bypassed
    ? { outcome: 'fired', reason: 'bypass holds: cooldown and rate limits skipped', detail: { bypassed: true } }
    : { outcome: 'fired', reason: `trigger ${workflow.triggerEvent} matched`, detail: {} };
}

/** Whether applyGuards reads and writes guard rows for this workflow: it has a cooldown or a rate limit. */
export function usesGuardState(workflow: IndexedWorkflow): boolean {
  return workflow.definition.cooldown !== undefined || workflow.definition.rateLimits.length > 0;
}

/** The end of the cooldown the event was committed in (ISO-8601, to the microsecond), or undefined. */
async function cooldownHolding(trx: Transaction<WalflowDatabase>, workflowId: string, key: string, committedAt: string): Promise<string | undefined> {
  // Created if missing and locked in one statement: two dispatchers cannot both see "no cooldown" and both fire,
  // and a prune deleting the expired row meanwhile cannot leave the check without its lock.
  const { rows } = await sql<{ until: string | null }>`
    INSERT INTO walflow.cooldowns AS c (workflow_id, key, until) VALUES (${workflowId}, ${key}, '-infinity')
    ON CONFLICT (workflow_id, key) DO UPDATE SET until = c.until
    RETURNING CASE WHEN c.until > ${committedAt}::timestamptz THEN to_char(c.until AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END AS until`.execute(trx);
  return rows[0]?.until ?? undefined;
}

async function startCooldown(trx: Transaction<WalflowDatabase>, workflowId: string, key: string, from: string, seconds: number): Promise<void> {
  const until = sql<Date>`${from}::timestamptz + make_interval(secs => ${seconds})`;
  await trx
    .insertInto('walflow.cooldowns')
    .values({ workflow_id: workflowId, key, until })
    .onConflict((conflict) => conflict.columns(['workflow_id', 'key']).doUpdateSet({ until: (eb) => eb.fn('greatest', [eb.ref('walflow.cooldowns.until'), eb.ref('excluded.until')]) }))
    .execute();
}

/** Creates missing windows and locks all of them in a fixed order (so two dispatchers cannot deadlock on them). */
async function lockWindows(
  trx: Transaction<WalflowDatabase>,
  workflowId: string,
  windows: { index: number; key: string; windowStart: Date }[],
): Promise<number[]> {
  const counts: number[] = [];
  for (const window of windows) {
    // Created if missing and locked in one statement, as a cooldown is.
    const { rows } = await sql<{ count: number }>`
      INSERT INTO walflow.rate_limit_windows AS w (workflow_id, limit_index, key, window_start)
      VALUES (${workflowId}, ${window.index}, ${window.key}, ${window.windowStart})
      ON CONFLICT (workflow_id, limit_index, key, window_start) DO UPDATE SET count = w.count
      RETURNING count`.execute(trx);
    counts.push(rows[0]!.count);
  }
  return counts;
}

/**
 * Whether this workflow already ran in the event's causal chain for the same aggregate (A → B → A): a run whose
 * correlation id is the chain. A run of the chain's first event has that event's id as its correlation id and is
 * found through its event (the runs' unique key); the chain index holds only the others (migration 0030).
 *
 * A chain that a replay's run started is a world apart from the live chain it shares its id with: the runs that
 * count there are that replay's, and the live runs of events caused down it (they carry its `replayId`). A replay
 * deciding counts its own world; live dispatch counts the world of the event's `replayId`, or, without one, the
 * live runs of events that carry none. So a replay of A sets B going again down its own chain, while
 * A → B → A stops in each world as it does live.
 */
export async function ranInChain(
  trx: Transaction<WalflowDatabase>,
  workflowId: string,
  chain: string,
  event: EventEnvelope,
  replayId: string | null = null,
): Promise<boolean> {
  const world = replayId ?? chainReplayOf(event);
  const sameAggregate = sql`aggregate_type IS NOT DISTINCT FROM ${event.aggregateType} AND aggregate_id IS NOT DISTINCT FROM ${event.aggregateId}`;
  // A chain's first event carries no replay id (walflow strips it from what applications write).
  const { rows } = await sql<{ ran: boolean }>`
    SELECT EXISTS (SELECT FROM walflow.workflow_runs
                   WHERE event_id = ${chain} AND workflow_id = ${workflowId} AND correlation_id = event_id
                     AND replay_id IS NOT DISTINCT FROM ${world} AND ${sameAggregate})
        OR EXISTS (SELECT FROM walflow.workflow_runs r
                   WHERE workflow_id = ${workflowId} AND correlation_id = ${chain} AND correlation_id <> event_id AND ${sameAggregate}
                     AND (r.replay_id = ${world}
                          OR r.replay_id IS NULL
                             AND (SELECT e.metadata->>'replayId' FROM walflow.events e
                                   WHERE e.committed_at = r.event_committed_at AND e.id = r.event_id) IS NOT DISTINCT FROM ${world})) AS ran`.execute(trx);
  return rows[0]!.ran;
}
