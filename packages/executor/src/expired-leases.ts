import type { WalflowDatabase } from '@walflow/core';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Logger } from 'pino';
import { anyUuid } from './any-uuid.js';
import { eventRowColumns, toEventEnvelope } from './event-row.js';
import { recordDeath } from './run-death.js';
import { getWorkflowsById, isUnreadable } from './workflow-store.js';

/** The error of an attempt whose worker stopped extending its lease. */
const LEASE_EXPIRED = 'worker lease expired';

/**
 * Returns runs whose worker died (its lease expired) to the queue, or, out of attempts, ends them dead. Such a
 * death is a death like any other: it counts toward the workflow's auto-pause and emits `email.failed` when the
 * run died on a `send_email`, in the transaction that records it. Returns how many runs it released.
 */
export async function releaseExpiredLeases(db: Kysely<WalflowDatabase>, logger: Logger): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const released = await trx
      .updateTable('walflow.workflow_runs')
      .set({
        status: sql`CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'queued' END`,
        finished_at: sql`CASE WHEN attempts >= max_attempts THEN now() END`,
        next_attempt_at: sql`now()`,
        // This attempt's error, replacing an earlier attempt's: the death it records says the same.
        last_error: LEASE_EXPIRED,
        locked_by: null,
        locked_until: null,
      })
      // Past rows locked now: a worker's transaction executing the run (a leased batch that outlasted its leases
      // finishes its runs or, failing before its commit, renews them before it lets go), whose worker is at work.
      // Waited for, its rows would go to the sweep first.
      .where('id', 'in', (eb) =>
        eb.selectFrom('walflow.workflow_runs').select('id').where('status', '=', 'running').where('locked_until', '<', sql<Date>`now()`).forUpdate().skipLocked(),
      )
      .returning(['id', 'status'])
      .execute();
    const dead = released.filter((run) => run.status === 'dead').map((run) => run.id);
    if (dead.length > 0) await recordDeaths(trx, dead, logger);
    return released.length;
  });
}

/**
 * Reads the dead runs with their events and the actions they had done (in a statement after the update, which
 * sees every outcome committed before the runs were released) and records what follows each death.
 */
async function recordDeaths(trx: Transaction<WalflowDatabase>, runIds: readonly string[], logger: Logger): Promise<void> {
  const rows = await trx
    .selectFrom('walflow.workflow_runs as r')
    // Each run's event through the key of its day's partition; OFFSET 0 keeps it a lookup per run.
    .innerJoinLateral(
      (eb) =>
        eb
          .selectFrom('walflow.events as e')
          .select(eventRowColumns)
          .whereRef('e.committed_at', '=', 'r.event_committed_at')
          .whereRef('e.id', '=', 'r.event_id')
          .offset(0)
          .as('e'),
      (join) => join.onTrue(),
    )
    .select(['r.id as run_id', 'r.workflow_id', 'r.replay_id', sql<number[]>`walflow.actions_done(r.id)`.as('actions_done')])
    .selectAll('e')
    .where('r.id', '=', anyUuid(runIds))
    // Each workflow's deaths count in commit order, as workers would have met them; workflows are taken in id
    // order, so two sweeps lock their rows in the same order.
    .orderBy('r.workflow_id')
    .orderBy('r.commit_lsn')
    .execute();
  const workflows = await getWorkflowsById(trx, [...new Set(rows.map((row) => row.workflow_id))]);
  for (const row of rows) {
    // A deleted workflow has nothing to count or pause; one that cannot be read, no actions to name or limit.
    const workflow = workflows.get(row.workflow_id);
    if (workflow === undefined || isUnreadable(workflow)) continue;
    const done = new Set(row.actions_done);
    const index = workflow.definition.actions.findIndex((_, candidate) => !done.has(candidate));
    const run = { id: row.run_id, replayId: row.replay_id, event: toEventEnvelope(row) };
    const failing = index === -1 ? undefined : { index, action: workflow.definition.actions[index]! };
    await recordDeath(trx, { run, workflow, failing, error: LEASE_EXPIRED }, logger);
  }
}
