import { AdvisoryLockClass, copyRows, formatLsn, parseLsn, uuidV7, type EventEnvelope, type TransactionEnd, type WalflowDatabase } from '@walflow/core';
import { sql, type RawBuilder, type Transaction } from 'kysely';
import { chainOf, type Decision, type IndexedWorkflow } from './decide.js';
import { runningWriters } from './outbox-writers.js';
import { isUnreadable, type UnreadableWorkflow } from './workflow-store.js';

/** One (event, matching workflow) pair and what was decided for it. */
export interface Considered {
  event: EventEnvelope;
  workflow: IndexedWorkflow | UnreadableWorkflow;
  decision: Decision;
  /** The run's concurrency key, for workflows that were handed on to the guards. */
  concurrencyKey?: string;
}

/** A pair that queues a run: only a workflow that could be read fires. */
type FiredConsidered = Considered & { workflow: IndexedWorkflow };

function isFired(item: Considered): item is FiredConsidered {
  return item.decision.outcome === 'fired' && !isUnreadable(item.workflow);
}

export interface EventsToInsert {
  events: EventEnvelope[];
  /** Read from the outbox by `walflow repair`: recorded as recovered, and possibly recorded already. */
  recovered: boolean;
  /** The transactions that wrote the batch's outbox rows (outbox-writers.ts). */
  writers: readonly string[];
  /** The slot whose checkpoint tells redelivered events from new ones. */
  slotName: string;
  /** The end of the batch's last whole transaction, which becomes the checkpoint once the batch is written. */
  checkpoint: TransactionEnd | null;
}

export interface InsertedEvents {
  /** The events not recorded before, in batch order. */
  fresh: EventEnvelope[];
  /** `walflow.workflow_revision`, read in the same transaction; null when there was nothing to insert. */
  workflowRevision: string | null;
  /** How many of the outbox writers a statement still saw running (outbox-writers.ts); null when there was nothing to insert. */
  writersRunning: number | null;
}

const EVENT_COLUMNS = [
  'id', 'event_type', 'tenant_id', 'aggregate_type', 'aggregate_id', 'payload', 'metadata',
  'committed_at', 'commit_lsn', 'tx_position', 'xid', 'recovered', 'recorded_xid',
];

/**
 * From this many rows a table's rows go in by COPY, which costs the server about two thirds of an INSERT from
 * a JSON parameter, but a round trip more. Recording batches of 100 cost the same either way (`pnpm bench
 * --only dispatch` with its batch size changed: 47–50 against 47–60 µs an event), of 200 0.78–0.95× with COPY,
 * of 500 0.76–0.86×, of 5,000 0.85×; at 1,000 events/s, COPY for every batch of a few events put commit →
 * recorded p50 from 5.3–5.7 to 6.1–6.8 ms.
 */
export const COPY_FROM_ROWS = 200;

/**
 * Records the events; returns the new ones, and what the dispatcher needs next: the workflows' revision (read once
 * the recording lock is held, by walflow.recording_revision(), so that a batch that waited behind an apply
 * converting guard state decides with the definition that state now means), and whether the outbox rows'
 * writers are all visible yet. Events get a place in recording order (recorded_xid,
 * an index entry) only while a sink reads that order: walflow.recording_xid(), once per batch.
 *
 * A small batch is one INSERT … ON CONFLICT DO NOTHING that also makes those reads. A large one reads them
 * first, with the slot's checkpoint, which the batch recording an event advances past it in the same
 * transaction. Events beyond it are new: they go in by COPY, which refuses a duplicate outright (the
 * dispatcher then records the batch again with onExisting 'skip'). Slices recorded before a crash by a batch
 * without their transaction's end cause that, and, once, a transaction whose end came alone in a batch with
 * nothing to write (it moves the slot, not this checkpoint) redelivered after a restart. A batch with slices
 * but not their end goes in by INSERT: its checkpoint would not cover them, and a refused COPY of them would be
 * refused again at every redelivery; COPY needs whole transactions, which its checkpoint covers. Events at or
 * below the checkpoint come again after a restart (PostgreSQL 15 forgets acknowledgements it had not saved),
 * and recovered ones may have been recorded: they go in by INSERT … ON CONFLICT too.
 */
export async function insertEvents(trx: Transaction<WalflowDatabase>, batch: EventsToInsert, onExisting: 'fail' | 'skip'): Promise<InsertedEvents> {
  const { events, recovered, writers, slotName } = batch;
  if (events.length === 0) return { fresh: [], workflowRevision: null, writersRunning: null };
  // Whole transactions: the last event's ends in the batch, so every earlier one's does too.
  const wholeTransactions = batch.checkpoint !== null && events.at(-1)!.commitLsn <= batch.checkpoint.commitLsn;
  const mayCopy = events.length >= COPY_FROM_ROWS && wholeTransactions && !recovered && onExisting === 'fail';
  if (!mayCopy) return insertUnrecorded(trx, events, recovered, sql`(SELECT walflow.recording_xid())`, writers);
  const { rows: [state] } = await sql<{ revision: string; writers_running: number; recording_xid: string | null; checkpoint: string | null }>`
    SELECT walflow.recording_revision()::text AS revision,
           ${runningWriters(writers)} AS writers_running,
           walflow.recording_xid()::text AS recording_xid,
           (SELECT checkpoint_lsn FROM walflow.consumer_state WHERE slot_name = ${slotName})::text AS checkpoint`.execute(trx);
  const { revision, writers_running: writersRunning, recording_xid: recordingXid, checkpoint: stored } = state!;
  if (stored !== null && events[0]!.commitLsn <= parseLsn(stored)) return insertUnrecorded(trx, events, recovered, sql`${recordingXid}::xid8`, writers);
  await copyRows(trx, 'walflow.events', EVENT_COLUMNS, eventRows(events, [recovered, recordingXid]));
  return { fresh: events, workflowRevision: revision, writersRunning };
}

/** The events' rows in EVENT_COLUMNS' order: their own columns, then `batchColumns`, the same for every event. */
function eventRows(events: EventEnvelope[], batchColumns: unknown[]): unknown[][] {
  return events.map((event) => [
    event.id,
    event.type,
    event.tenantId,
    event.aggregateType,
    event.aggregateId,
    event.payloadJson ?? event.payload,
    event.metadataJson ?? event.metadata,
    event.committedAt,
    formatLsn(event.commitLsn),
    event.position,
    event.xid,
    ...batchColumns,
  ]);
}

/** INSERT … ON CONFLICT DO NOTHING of the events, with recorded_xid from `recordedXid`; the statement also makes the reads. */
async function insertUnrecorded(
  trx: Transaction<WalflowDatabase>,
  events: EventEnvelope[],
  recovered: boolean,
  recordedXid: RawBuilder<unknown>,
  writers: readonly string[],
): Promise<InsertedEvents> {
  const { rows: [result] } = await sql<{ fresh: string[] | null; revision: string; writers_running: number }>`
    WITH inserted AS (
      INSERT INTO walflow.events (${sql.raw(EVENT_COLUMNS.join(', '))})
      SELECT (r->>0)::uuid, r->>1, r->>2, r->>3, r->>4, (r->>5)::jsonb, (r->>6)::jsonb, (r->>7)::timestamptz, (r->>8)::pg_lsn, (r->>9)::int, (r->>10)::bigint,
             (r->>11)::boolean, ${recordedXid}
        FROM jsonb_array_elements(${asJsonRows(eventRows(events, [recovered]))}) AS r
      ON CONFLICT DO NOTHING
      RETURNING id)
    SELECT CASE WHEN (SELECT count(*) FROM inserted) < ${events.length} THEN array(SELECT id::text FROM inserted) END AS fresh,
           walflow.recording_revision()::text AS revision,
           ${runningWriters(writers)} AS writers_running`.execute(trx);
  // The ids come back only when some event was recorded before: parsing 5,000 of them was 2.5 % of the CPU.
  const { fresh, revision: workflowRevision, writers_running: writersRunning } = result!;
  if (fresh === null) return { fresh: events, workflowRevision, writersRunning };
  const inserted = new Set(fresh);
  return { fresh: events.filter((event) => inserted.has(event.id)), workflowRevision, writersRunning };
}

const RUN_COLUMNS = [
  'id', 'workflow_id', 'workflow_version', 'tenant_id', 'event_id', 'event_committed_at', 'event_type', 'aggregate_type', 'aggregate_id',
  'commit_lsn', 'tx_position', 'max_attempts', 'correlation_id', 'ordered', 'replay_id', 'concurrency_key', 'decision_reason', 'decision_detail',
];

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
   * events its own transaction recorded, so it says 'fail': the rows go in by plain INSERT (measured a fifth
   * cheaper than ON CONFLICT's speculative insertion), or the runs by COPY from COPY_FROM_ROWS on, and the
   * unique constraints still refuse a duplicate (the dispatcher then writes the batch again with 'skip'). A
   * replay meets existing rows by design: 'skip'.
   */
  onExisting: 'fail' | 'skip';
}

/**
 * Locks the events of a replayed page that still exist (FOR KEY SHARE), and returns their ids. A run needs its
 * event, and prune deletes old events that have no unfinished run: without the lock, prune could delete an event
 * between the page's read and the commit of its runs, which it cannot see, and leave runs no worker can claim.
 * With it, prune's deletion waits for the replay's commit and then sees the runs.
 */
export async function lockReplayedEvents(trx: Transaction<WalflowDatabase>, events: readonly EventEnvelope[]): Promise<Set<string>> {
  if (events.length === 0) return new Set();
  const committed = events.map((event) => Date.parse(event.committedAt));
  // The page is a stretch of commit time: bounds on it let the planner skip the other days' partitions.
  const { rows } = await sql<{ id: string }>`
    SELECT id FROM walflow.events
     WHERE committed_at BETWEEN ${new Date(Math.min(...committed) - 1)} AND ${new Date(Math.max(...committed) + 1)}
       AND id = ANY(${events.map((event) => event.id)}::uuid[])
       FOR KEY SHARE`.execute(trx);
  return new Set(rows.map((row) => row.id));
}

/**
 * The (event, workflow) pairs of these events already decided under a replay id, as `event|workflow`: the same
 * replay run again decides only the others, so its guards are not counted twice. The same replay run twice at
 * once takes turns, page by page, from here to its commit: the second reads what the first decided.
 */
export async function decidedInReplay(trx: Transaction<WalflowDatabase>, events: readonly EventEnvelope[], replayId: string): Promise<Set<string>> {
  if (events.length === 0) return new Set();
  await sql`SELECT pg_advisory_xact_lock(${AdvisoryLockClass.replay}, hashtext(${replayId}))`.execute(trx);
  const ids = events.map((event) => event.id);
  const { rows } = await sql<{ pair: string }>`
    SELECT event_id || '|' || workflow_id AS pair FROM walflow.workflow_runs WHERE event_id = ANY(${ids}::uuid[]) AND replay_id = ${replayId}
    UNION ALL
    SELECT event_id || '|' || workflow_id FROM walflow.decision_records WHERE event_id = ANY(${ids}::uuid[]) AND replay_id = ${replayId}`.execute(trx);
  return new Set(rows.map((row) => row.pair));
}

/**
 * Writes what a batch decided: a run for every fired decision, carrying the decision's reason (a fired
 * decision is its run), a decision record for every other decision, the deletion of the recorded outbox rows
 * and the checkpoint, in one statement (after the runs' COPY, for many runs without 'skip'). With
 * 'skip', a pair whose decision is recorded already, as a run or as a record, gets nothing new: each table's
 * unique key sees only its own rows, so each insert also looks into the other table (by the event, workflow
 * and replay of its row `r`). Returns how many runs were queued.
 */
export async function writeOutcomes(trx: Transaction<WalflowDatabase>, outcomes: Outcomes): Promise<number> {
  const { considered, replayId, recordedOutboxIds = [], checkpoint = null, onExisting } = outcomes;
  const fired: FiredConsidered[] = [];
  const unfired: Considered[] = [];
  for (const item of considered) {
    if (isFired(item)) fired.push(item);
    else unfired.push(item);
  }
  const skipExisting = onExisting === 'skip';
  const parts: RawBuilder<unknown>[] = [];
  if (fired.length >= COPY_FROM_ROWS && !skipExisting) await copyRows(trx, 'walflow.workflow_runs', RUN_COLUMNS, runRows(fired, replayId));
  else if (fired.length > 0) parts.push(queueRuns(fired, replayId, skipExisting));
  if (unfired.length > 0) parts.push(recordDecisions(unfired, replayId, skipExisting));
  if (recordedOutboxIds.length > 0) parts.push(sql`removed AS (DELETE FROM walflow.outbox WHERE id = ANY(${recordedOutboxIds}::uuid[]))`);
  if (checkpoint !== null) parts.push(advanceCheckpoint(checkpoint.slotName, checkpoint.end));
  if (parts.length === 0) return fired.length;
  // Without 'skip', the COPY or the statement inserts every run or fails.
  const queued = fired.length > 0 && skipExisting ? sql`(SELECT count(*) FROM queued)` : sql`${fired.length}`;
  const { rows } = await sql<{ queued: number }>`WITH ${sql.join(parts)} SELECT ${queued}::int AS queued`.execute(trx);
  return rows[0]!.queued;
}

function runRows(fired: FiredConsidered[], replayId: string | null): unknown[][] {
  // Run ids are made here rather than by the column's default, which costs PostgreSQL a function call per row.
  return fired.map((item) => [
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
}

function queueRuns(fired: FiredConsidered[], replayId: string | null, skipExisting: boolean): RawBuilder<unknown> {
  return sql`queued AS (
    INSERT INTO walflow.workflow_runs (${sql.raw(RUN_COLUMNS.join(', '))})
    SELECT (r->>0)::uuid, (r->>1)::uuid, (r->>2)::int, r->>3, (r->>4)::uuid, (r->>5)::timestamptz, r->>6, r->>7, r->>8,
           (r->>9)::pg_lsn, (r->>10)::int, (r->>11)::int, (r->>12)::uuid, (r->>13)::boolean, r->>14, r->>15, r->>16, r->17
      FROM jsonb_array_elements(${asJsonRows(runRows(fired, replayId))}) AS r
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
