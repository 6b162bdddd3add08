import { formatLsn, uuidV7, type EventEnvelope, type TransactionEnd, type WalflowDatabase } from '@walflow/core';
import { sql, type RawBuilder, type Transaction } from 'kysely';
import { chainOf, type Decision, type IndexedWorkflow } from './decide.js';
import { runningWriters } from './outbox-writers.js';

/** One (event, matching workflow) pair and what was decided for it. */
export interface Considered {
  event: EventEnvelope;
  workflow: IndexedWorkflow;
  decision: Decision;
  /** The run's concurrency key, for workflows that were handed on to the guards. */
  concurrencyKey?: string;
}

export interface InsertedEvents {
  /** The events not recorded before, in batch order. */
  fresh: EventEnvelope[];
  /** `walflow.workflow_revision`, read by the same statement; null when there was nothing to insert. */
  workflowRevision: string | null;
  /** How many of the given outbox writers the statement still saw running (outbox-writers.ts); null when there was nothing to insert. */
  writersRunning: number | null;
}

/**
 * Inserts the events idempotently (on their commit time and id). The statement also reads the workflows'
 * revision and whether the outbox rows' writers are all visible yet, which the dispatcher needs next, so a
 * batch spends no round trip of its own on either. Events get a place in recording order (recorded_xid, an
 * index entry) only while a sink reads that order: walflow.recording_xid(), once per statement.
 */
export async function insertEvents(
  trx: Transaction<WalflowDatabase>,
  events: EventEnvelope[],
  recovered: boolean,
  writers: readonly string[],
): Promise<InsertedEvents> {
  if (events.length === 0) return { fresh: [], workflowRevision: null, writersRunning: null };
  const rows = events.map((event) => [
    event.id,
    event.type,
    event.tenantId,
    event.aggregateType,
    event.aggregateId,
    event.payload,
    event.metadata,
    event.committedAt,
    formatLsn(event.commitLsn),
    event.position,
    event.xid,
  ]);
  const { rows: [result] } = await sql<{ fresh: string[] | null; revision: string; writers_running: number }>`
    WITH inserted AS (
      INSERT INTO walflow.events
        (id, event_type, tenant_id, aggregate_type, aggregate_id, payload, metadata, committed_at, commit_lsn, tx_position, xid, recovered, recorded_xid)
      SELECT (r->>0)::uuid, r->>1, r->>2, r->>3, r->>4, r->5, r->6, (r->>7)::timestamptz, (r->>8)::pg_lsn, (r->>9)::int, (r->>10)::bigint, ${recovered},
             (SELECT walflow.recording_xid())
        FROM jsonb_array_elements(${asJsonRows(rows)}) AS r
      ON CONFLICT DO NOTHING
      RETURNING id)
    SELECT CASE WHEN (SELECT count(*) FROM inserted) < ${events.length} THEN array(SELECT id::text FROM inserted) END AS fresh,
           (SELECT revision FROM walflow.workflow_revision)::text AS revision,
           ${runningWriters(writers)} AS writers_running`.execute(trx);
  // The ids come back only when some event was recorded before: parsing 5,000 of them was 2.5 % of the CPU.
  const { fresh, revision: workflowRevision, writers_running: writersRunning } = result!;
  if (fresh === null) return { fresh: events, workflowRevision, writersRunning };
  const inserted = new Set(fresh);
  return { fresh: events.filter((event) => inserted.has(event.id)), workflowRevision, writersRunning };
}

export interface Outcomes {
  considered: Considered[];
  /** Decisions and runs of a replay carry its id; live ones carry null. */
  replayId: string | null;
  /** Outbox rows now recorded (as events or dead letters), deleted in the same statement. */
  recordedOutboxIds?: string[];
  /** The slot checkpoint to advance to, in the same statement. */
  checkpoint?: { slotName: string; end: TransactionEnd } | null;
  /**
   * What a decision whose (event, workflow, replay) is already recorded does. Live dispatch decides only for
   * events its own transaction recorded, so it says 'fail': the rows go in by plain INSERT, measured a fifth
   * cheaper than ON CONFLICT's speculative insertion, and the unique constraints still refuse a duplicate
   * (the dispatcher then writes the batch again with 'skip'). A replay meets existing rows by design: 'skip'.
   */
  onExisting: 'fail' | 'skip';
}

/**
 * Writes what a batch decided in ONE statement: a run for every fired decision, carrying the decision's reason
 * (a fired decision is its run), a decision record for every other decision, the deletion of the recorded
 * outbox rows and the checkpoint. With 'skip', a pair whose decision is recorded already, as a run or as a
 * record, gets nothing new: each table's unique key sees only its own rows, so each insert also looks into the
 * other table (by the event, workflow and replay of its row `r`). Returns how many runs were queued.
 */
export async function writeOutcomes(trx: Transaction<WalflowDatabase>, outcomes: Outcomes): Promise<number> {
  const { considered, replayId, recordedOutboxIds = [], checkpoint = null, onExisting } = outcomes;
  const fired: Considered[] = [];
  const unfired: Considered[] = [];
  for (const item of considered) (item.decision.outcome === 'fired' ? fired : unfired).push(item);
  const parts: RawBuilder<unknown>[] = [];
  const skipExisting = onExisting === 'skip';
  if (fired.length > 0) parts.push(queueRuns(fired, replayId, skipExisting));
  if (unfired.length > 0) parts.push(recordDecisions(unfired, replayId, skipExisting));
  if (recordedOutboxIds.length > 0) parts.push(sql`removed AS (DELETE FROM walflow.outbox WHERE id = ANY(${recordedOutboxIds}::uuid[]))`);
  if (checkpoint !== null) parts.push(advanceCheckpoint(checkpoint.slotName, checkpoint.end));
  if (parts.length === 0) return 0;
  // Without 'skip', the statement either inserts every run or fails.
  const counted = fired.length > 0 && skipExisting ? sql`(SELECT count(*) FROM queued)` : sql`${fired.length}`;
  const { rows } = await sql<{ queued: number }>`WITH ${sql.join(parts)} SELECT ${counted}::int AS queued`.execute(trx);
  return rows[0]!.queued;
}

function queueRuns(fired: Considered[], replayId: string | null, skipExisting: boolean): RawBuilder<unknown> {
  // Run ids are made here rather than by the column's default, which costs PostgreSQL a function call per row.
  const rows = fired.map((item) => [
    uuidV7(),
    item.workflow.id,
    item.workflow.version,
    item.event.tenantId,
    item.event.id,
    item.event.committedAt,
    item.event.type,
    item.event.aggregateType,
    item.event.aggregateId,
    formatLsn(item.event.commitLsn),
    item.event.position,
    item.workflow.definition.retry.maxAttempts,
    chainOf(item.event),
    item.workflow.definition.ordering === 'aggregate',
    replayId,
    item.concurrencyKey ?? '',
    item.decision.reason,
    item.decision.detail,
  ]);
  return sql`queued AS (
    INSERT INTO walflow.workflow_runs
      (id, workflow_id, workflow_version, tenant_id, event_id, event_committed_at, event_type, aggregate_type, aggregate_id,
       commit_lsn, tx_position, max_attempts, correlation_id, ordered, replay_id, concurrency_key, decision_reason, decision_detail)
    SELECT (r->>0)::uuid, (r->>1)::uuid, (r->>2)::int, r->>3, (r->>4)::uuid, (r->>5)::timestamptz, r->>6, r->>7, r->>8,
           (r->>9)::pg_lsn, (r->>10)::int, (r->>11)::int, (r->>12)::uuid, (r->>13)::boolean, r->>14, r->>15, r->>16, r->17
      FROM jsonb_array_elements(${asJsonRows(rows)}) AS r
    ${skipExisting ? sql`WHERE NOT EXISTS (SELECT FROM walflow.decision_records d
                                          WHERE d.event_id = (r->>4)::uuid AND d.workflow_id = (r->>1)::uuid
                                            AND d.replay_id IS NOT DISTINCT FROM r->>14)
                         ON CONFLICT DO NOTHING RETURNING id` : sql``})`;
}

function recordDecisions(unfired: Considered[], replayId: string | null, skipExisting: boolean): RawBuilder<unknown> {
  const rows = unfired.map((item) => [
    item.workflow.id,
    item.workflow.version,
    item.event.tenantId,
    item.event.id,
    item.event.committedAt,
    item.decision.outcome,
    item.decision.reason,
    item.decision.detail,
    replayId,
  ]);
  return sql`decided AS (
    INSERT INTO walflow.decision_records
      (workflow_id, workflow_version, tenant_id, event_id, event_committed_at, outcome, reason, detail, replay_id)
    SELECT (r->>0)::uuid, (r->>1)::int, r->>2, (r->>3)::uuid, (r->>4)::timestamptz, r->>5, r->>6, r->7, r->>8
      FROM jsonb_array_elements(${asJsonRows(rows)}) AS r
    ${skipExisting ? sql`WHERE NOT EXISTS (SELECT FROM walflow.workflow_runs w
                                          WHERE w.event_id = (r->>3)::uuid AND w.workflow_id = (r->>0)::uuid
                                            AND w.replay_id IS NOT DISTINCT FROM r->>8)
                         ON CONFLICT DO NOTHING` : sql``})`;
}

function advanceCheckpoint(slotName: string, end: TransactionEnd): RawBuilder<unknown> {
  const lsn = formatLsn(end.endLsn);
  return sql`checkpointed AS (
    UPDATE walflow.consumer_state
       SET checkpoint_lsn = ${lsn}::pg_lsn, last_commit_at = ${end.committedAt}, updated_at = now()
     WHERE slot_name = ${slotName} AND (checkpoint_lsn IS NULL OR checkpoint_lsn < ${lsn}::pg_lsn))`;
}

/**
 * Rows for `jsonb_array_elements`: one JSON parameter per statement. Measured on a batch of 5,000 events, it
 * costs Node a third of the CPU of one text array per column (which node-postgres escapes element by
 * element), and PostgreSQL no more.
 */
function asJsonRows(rows: unknown[][]): RawBuilder<unknown> {
  return sql`${JSON.stringify(rows)}::jsonb`;
}
