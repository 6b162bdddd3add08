import { AdvisoryLockClass, SqlState, sqlStateOf, WalflowError, type WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';
import { countExpiredGuardState, deleteExpiredGuardState } from './prune-guard-state.js';

export interface PruneOptions {
  /** Everything about events committed before this goes. */
  olderThan: Date;
  /** Count, change nothing. */
  dryRun?: boolean;
  /** Rows per delete statement, so no statement holds locks for long. @default 5000 */
  batchSize?: number;
  /** The audit log is kept longer than events. @default one year before now */
  auditOlderThan?: Date;
  /** Stops the prune between two partitions or batches (a process shutting down): what is done stays done. */
  signal?: AbortSignal;
}

export interface PruneResult {
  droppedPartitions: string[];
  events: number;
  decisions: number;
  runs: number;
  deadLetters: number;
  auditEntries: number;
  /** Cooldowns and rate-limit windows whose time was over before the cut. */
  guardRows: number;
  /** Old events kept because a JetStream sink has not published them yet (a retired sink's cursor keeps them all). */
  keptForSinks: number;
}

const DAILY_PARTITION = /^events_(\d{4})(\d{2})(\d{2})$/;

/** The states of a run prune may delete. */
const FINISHED = sql`('succeeded', 'dead', 'cancelled')`;

/**
 * An event `e` not yet published by every JetStream sink: recorded at or after the position of the sink furthest
 * behind (null without a sink). Compared bare where it selects rows, so the recording-order index answers it.
 */
const UNPUBLISHED = sql`e.recorded_xid >= (SELECT min(recorded_xid) FROM walflow.sink_cursors)`;

/**
 * Removes events, decisions, finished runs (with their action outcomes) and resolved dead letters older than
 * the window. Whole daily partitions of the event log are dropped, which costs nothing and leaves no bloat;
 * what remains (the partition holding the cut, the default partition) is deleted in bounded batches. Queued
 * and running runs are never touched, nor their decisions (a fired decision is its run, and goes with it), nor
 * their events, which a worker reads when it claims the run, nor events a JetStream sink has yet to publish: a
 * day holding one of those is deleted row by row around it.
 *
 * One prune at a time: a second one, whose partition drops would find partitions the first has just dropped,
 * is refused with `prune_busy`. The lock is held by the one connection the prune runs on.
 */
export async function prune(db: Kysely<WalflowDatabase>, options: PruneOptions): Promise<PruneResult> {
  if (options.dryRun) return pruneOn(db, options);
  return db.connection().execute(async (connection) => {
    const { rows } = await sql<{ locked: boolean }>`SELECT pg_try_advisory_lock(${AdvisoryLockClass.prune}, 0) AS locked`.execute(connection);
    if (!rows[0]!.locked) {
      throw new WalflowError('prune_busy', "another prune is running (walflow prune, or a walflow process's retention): try again once it has finished");
    }
    try {
      return await pruneOn(connection, options);
    } finally {
      // Fails only with the connection, whose session took the lock with it.
      await sql`SELECT pg_advisory_unlock(${AdvisoryLockClass.prune}, 0)`.execute(connection).catch(() => undefined);
    }
  });
}

async function pruneOn(db: Kysely<WalflowDatabase>, options: PruneOptions): Promise<PruneResult> {
  const cutoff = options.olderThan;
  const auditCutoff = options.auditOlderThan ?? new Date(Date.now() - 365 * 86_400_000);
  const batch = options.batchSize ?? 5000;
  const { rows: partitions } = await sql<{ name: string }>`
    SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'walflow.events'::regclass ORDER BY c.relname`.execute(db);
  const { rows: daysToKeep } = await sql<{ day: string }>`
    SELECT DISTINCT to_char(event_committed_at AT TIME ZONE 'UTC', 'YYYYMMDD') AS day
      FROM walflow.workflow_runs WHERE status IN ('queued', 'running') AND event_committed_at < ${cutoff}
    UNION
    SELECT DISTINCT to_char(committed_at AT TIME ZONE 'UTC', 'YYYYMMDD')
      FROM walflow.events e WHERE committed_at < ${cutoff} AND ${UNPUBLISHED}`.execute(db);
  const keptDays = new Set(daysToKeep.map((row) => row.day));
  const droppable = partitions
    .map((partition) => ({ name: partition.name, match: DAILY_PARTITION.exec(partition.name) }))
    .filter(({ match }) => match !== null && Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]) + 1) <= cutoff.getTime())
    .filter(({ match }) => !keptDays.has(`${match![1]}${match![2]}${match![3]}`))
    .map(({ name }) => name);

  const count = async (query: ReturnType<typeof sql<{ n: string }>>): Promise<number> => Number((await query.execute(db)).rows[0]?.n ?? 0);
  const keptForSinks = await count(sql`SELECT count(*) AS n FROM walflow.events e WHERE e.committed_at < ${cutoff} AND ${UNPUBLISHED}`);
  const oldEvents = sql`walflow.events e WHERE e.committed_at < ${cutoff} AND NOT coalesce(${UNPUBLISHED}, false)
    AND NOT EXISTS (SELECT FROM walflow.workflow_runs r WHERE r.event_id = e.id AND r.status IN ('queued', 'running'))`;
  const finishedRuns = sql`walflow.workflow_runs WHERE event_committed_at < ${cutoff} AND status IN ${FINISHED}`;
  // A run queued before migration 0019 keeps its fired decision here (run_id): it stays while the run does.
  const oldDecisions = sql`walflow.decision_records d WHERE d.event_committed_at < ${cutoff}
    AND NOT EXISTS (SELECT FROM walflow.workflow_runs r WHERE r.id = d.run_id AND r.status IN ('queued', 'running'))`;
  if (options.dryRun) {
    return {
      droppedPartitions: droppable,
      keptForSinks,
      events: await count(sql`SELECT count(*) AS n FROM ${oldEvents}`),
      decisions: await count(sql`
        SELECT (SELECT count(*) FROM ${oldDecisions})
             + (SELECT count(*) FROM ${finishedRuns} AND decision_reason IS NOT NULL) AS n`),
      runs: await count(sql`SELECT count(*) AS n FROM ${finishedRuns}`),
      deadLetters: await count(sql`SELECT count(*) AS n FROM walflow.dead_letters WHERE resolved_at IS NOT NULL AND created_at < ${cutoff}`),
      auditEntries: await count(sql`SELECT count(*) AS n FROM walflow.audit_log WHERE at < ${auditCutoff}`),
      guardRows: await countExpiredGuardState(db, cutoff),
    };
  }

  let events = 0;
  const droppedPartitions: string[] = [];
  for (const name of droppable) {
    options.signal?.throwIfAborted();
    const dropped = await dropPartition(db, name);
    if (dropped === null) continue;
    events += dropped;
    droppedPartitions.push(name);
  }
  const inBatches = async (step: () => Promise<number>): Promise<number> => {
    let total = 0;
    for (;;) {
      options.signal?.throwIfAborted();
      const deleted = await step();
      total += deleted;
      if (deleted < batch) return total;
    }
  };
  const deleting = (statement: ReturnType<typeof sql>) => async () => Number((await statement.execute(db)).numAffectedRows ?? 0n);
  const deleteEvents = deleting(sql`DELETE FROM walflow.events WHERE (committed_at, id) IN (SELECT e.committed_at, e.id FROM ${oldEvents} LIMIT ${batch})`);
  events += await inBatches(async () => {
    for (;;) {
      try {
        return await deleteEvents();
      } catch (error) {
        // Migration 0026's trigger refused an event whose run a replay or a retry queued while this statement
        // ran (they lock the event, so the trigger saw their commit): the batch chosen again leaves it out.
        if (sqlStateOf(error) !== SqlState.foreignKeyViolation) throw error;
      }
    }
  });
  let decisions = await inBatches(
    deleting(sql`DELETE FROM walflow.decision_records WHERE id IN (SELECT d.id FROM ${oldDecisions} LIMIT ${batch})`),
  );
  // Data-modifying CTEs all run: a run, its action outcomes and its decision go together. The status is checked
  // again on the row deleted: a run retried while the statement runs is rechecked as it is now (READ COMMITTED
  // re-evaluates the deleted table's own conditions, not the list the subquery chose from the older snapshot).
  const runs = await inBatches(async () => {
    const { rows } = await sql<{ runs: string; fired: string }>`
      WITH gone AS (
        DELETE FROM walflow.workflow_runs WHERE id IN (SELECT id FROM ${finishedRuns} LIMIT ${batch}) AND status IN ${FINISHED}
        RETURNING id, decision_reason),
      outcomes AS (DELETE FROM walflow.action_outcomes WHERE run_id IN (SELECT id FROM gone))
      SELECT count(*) AS runs, count(decision_reason) AS fired FROM gone`.execute(db);
    decisions += Number(rows[0]!.fired);
    return Number(rows[0]!.runs);
  });
  const deadLetters = await inBatches(
    deleting(sql`DELETE FROM walflow.dead_letters WHERE id IN (SELECT id FROM walflow.dead_letters WHERE resolved_at IS NOT NULL AND created_at < ${cutoff} LIMIT ${batch})`),
  );
  const auditEntries = await inBatches(
    deleting(sql`DELETE FROM walflow.audit_log WHERE id IN (SELECT id FROM walflow.audit_log WHERE at < ${auditCutoff} LIMIT ${batch})`),
  );
  const guardRows = await deleteExpiredGuardState(db, cutoff, batch, options.signal);
  return { droppedPartitions, events, decisions, runs, deadLetters, auditEntries, guardRows, keptForSinks };
}

/** How long a partition's drop waits for the transactions reading the log before it leaves the day to row deletes. */
const DROP_LOCK_TIMEOUT = '5s';

/**
 * Drops one day's partition, unless a run that needs one of its events has been queued since prune looked (a
 * replay's or a retry's, whose transactions lock the events they need), or an event a sink has yet to publish
 * has been recorded into it (a backlog's, or one `walflow repair` recovers, with an old commit time): the locks
 * taken first wait for their transactions, and the check after them sees what they wrote. The log's locks are taken as DROP takes them, parent first, so a claim
 * reading the log waits rather than deadlocks; after DROP_LOCK_TIMEOUT the day is left to the row deletes that
 * follow. Returns the events dropped, or null when the day stays.
 */
async function dropPartition(db: Kysely<WalflowDatabase>, name: string): Promise<number | null> {
  const partition = sql.table(`walflow.${name}`);
  // Counted before the locks, which every claim waits for.
  const { rows: counted } = await sql<{ n: string }>`SELECT count(*) AS n FROM ${partition}`.execute(db);
  try {
    return await db.transaction().execute(async (trx) => {
      await sql`SET LOCAL lock_timeout = ${sql.lit(DROP_LOCK_TIMEOUT)}`.execute(trx);
      await sql`LOCK TABLE walflow.events, ${partition} IN ACCESS EXCLUSIVE MODE`.execute(trx);
      const { rows } = await sql<{ needed: boolean }>`
        SELECT EXISTS (SELECT FROM walflow.workflow_runs r JOIN ${partition} e ON e.id = r.event_id
                        WHERE r.status IN ('queued', 'running'))
            OR EXISTS (SELECT FROM ${partition} e WHERE ${UNPUBLISHED}) AS needed`.execute(trx);
      if (rows[0]!.needed) return null;
      await sql`DROP TABLE ${partition}`.execute(trx);
      return Number(counted[0]!.n);
    });
  } catch (error) {
    const state = sqlStateOf(error);
    if (state === SqlState.lockNotAvailable || state === SqlState.deadlockDetected) return null;
    throw error;
  }
}
