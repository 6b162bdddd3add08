import type { WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';
import { eventRowColumns } from './event-row.js';

export interface EventExplanation {
  event: {
    id: string;
    type: string;
    tenantId: string;
    aggregateType: string | null;
    aggregateId: string | null;
    payload: unknown;
    metadata: Record<string, unknown>;
    committedAt: string;
    commitLsn: string;
    recovered: boolean;
  };
  decisions: { workflow: string; workflowId: string; version: number; outcome: string; reason: string; detail: unknown; runId: string | null; replayId: string | null }[];
  runs: {
    id: string;
    workflow: string;
    status: string;
    attempts: number;
    lastError: string | null;
    /** The replay that queued the run; null for a live run. */
    replayId: string | null;
    actions: { index: number; type: string; status: string; error: string | null; attempts: number }[];
  }[];
  /** The chain upwards, nearest cause first, as far as the event log still holds it. */
  causes: { id: string; type: string; committedAt: string }[];
  /** Events the runs of this event emitted. */
  effects: { id: string; type: string; committedAt: string; workflowId: string | null }[];
}

/** Why did (or didn't) each workflow run for this event, what did the runs do, and what came of them. */
export async function explainEvent(db: Kysely<WalflowDatabase>, eventId: string): Promise<EventExplanation | undefined> {
  const row = await db
    .selectFrom('walflow.events')
    .select([...eventRowColumns, 'recovered'])
    .where('id', '=', eventId)
    .executeTakeFirst();
  if (!row) return undefined;

  const decisions = await db
    .selectFrom('walflow.decisions as d')
    .leftJoin('walflow.workflows as w', 'w.id', 'd.workflow_id')
    .select(['w.name', 'd.workflow_id', 'd.workflow_version', 'd.outcome', 'd.reason', 'd.detail', 'd.run_id', 'd.replay_id'])
    .where('d.event_id', '=', eventId)
    .orderBy('w.name')
    .execute();
  const runs = await db
    .selectFrom('walflow.workflow_runs as r')
    .leftJoin('walflow.workflows as w', 'w.id', 'r.workflow_id')
    .select(['r.id', 'w.name', 'r.status', 'r.attempts', 'r.last_error', 'r.replay_id'])
    .where('r.event_id', '=', eventId)
    .orderBy('r.created_at')
    .execute();
  const outcomes =
    runs.length === 0
      ? []
      : await db
          .selectFrom('walflow.action_outcomes')
          .select(['run_id', 'action_index', 'action_type', 'status', 'error', 'attempts'])
          .where(
            'run_id',
            'in',
            runs.map((run) => run.id),
          )
          .orderBy('action_index')
          .execute();
  const effects = await db
    .selectFrom('walflow.events')
    .select(['id', 'event_type', sql<string>`to_json(committed_at) #>> '{}'`.as('committed_at'), sql<string | null>`metadata->>'workflowId'`.as('workflow_id')])
    .where(sql<boolean>`metadata->>'causationId' = ${eventId}`)
    .orderBy('committed_at')
    .execute();

  const causes: EventExplanation['causes'] = [];
  for (let cause = row.metadata.causationId; typeof cause === 'string' && causes.length < 64; ) {
    const parent = await db
      .selectFrom('walflow.events')
      .select(['id', 'event_type', 'metadata', sql<string>`to_json(committed_at) #>> '{}'`.as('committed_at')])
      .where('id', '=', cause)
      .executeTakeFirst();
    if (!parent) break;
    causes.push({ id: parent.id, type: parent.event_type, committedAt: parent.committed_at });
    cause = parent.metadata.causationId;
  }

  return {
    event: {
      id: row.id,
      type: row.event_type,
      tenantId: row.tenant_id,
      aggregateType: row.aggregate_type,
      aggregateId: row.aggregate_id,
      payload: row.payload,
      metadata: row.metadata,
      committedAt: row.committed_at,
      commitLsn: row.commit_lsn,
      recovered: row.recovered,
    },
    decisions: decisions.map((d) => ({
      workflow: d.name ?? '(deleted workflow)',
      workflowId: d.workflow_id,
      version: d.workflow_version,
      outcome: d.outcome,
      reason: d.reason,
      detail: d.detail,
      runId: d.run_id,
      replayId: d.replay_id,
    })),
    runs: runs.map((run) => ({
      id: run.id,
      workflow: run.name ?? '(deleted workflow)',
      status: run.status,
      attempts: run.attempts,
      lastError: run.last_error,
      replayId: run.replay_id,
      actions: outcomes
        .filter((outcome) => outcome.run_id === run.id)
        .map((outcome) => ({ index: outcome.action_index, type: outcome.action_type, status: outcome.status, error: outcome.error, attempts: outcome.attempts })),
    })),
    causes,
    effects: effects.map((effect) => ({ id: effect.id, type: effect.event_type, committedAt: effect.committed_at, workflowId: effect.workflow_id })),
  };
}
