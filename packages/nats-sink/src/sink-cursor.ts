import type { WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';
import type { SinkEvent } from './sink-message.js';
import { pageOf, type PageLimits } from './sized-page.js';

/**
 * A place in the event log in recording order (see db/migrations/0010_nats_sink.sql): the recording
 * transaction's id, then commit order inside it. Text keeps xid8 and pg_lsn exact.
 */
export interface LogPosition {
  recordedXid: string;
  commitLsn: string;
  txPosition: number;
  eventId: string;
}

export type LoggedEvent = SinkEvent & LogPosition;

/**
 * Only rows of transactions that are over: every row inserted from now on gets a transaction id at least this
 * horizon, so a cursor that moves past the rows read never passes one inserted later.
 */
const FINISHED = sql`recorded_xid < pg_snapshot_xmin(pg_current_snapshot())`;
const ORDER = sql`recorded_xid, commit_lsn, tx_position, id`;

/** The row whose lock a sink's publisher takes (migration 0045); committed by itself, before a round looks for it. */
export async function ensurePublisherRow(db: Kysely<WalflowDatabase>, sink: string): Promise<void> {
  await sql`INSERT INTO walflow.sink_publishers (sink) VALUES (${sink}) ON CONFLICT DO NOTHING`.execute(db);
}

/**
 * One publisher per sink and database: the lock of the sink's row in walflow.sink_publishers, which roles without
 * rights on that table cannot take, for the caller's transaction, cursor save included. Taken, it limits how long
 * the transaction may wait between statements (idle_in_transaction_session_timeout) to `idleLimitMs`: a process
 * that froze holding it (stopped, paused, cut off) leaves the server to end its session, and the lock to a standby.
 */
export async function tryLockSink(trx: Kysely<WalflowDatabase>, sink: string, idleLimitMs: number): Promise<boolean> {
  const { rows } = await sql`
    SELECT set_config('idle_in_transaction_session_timeout', ${String(idleLimitMs)}, true)
      FROM walflow.sink_publishers WHERE sink = ${sink} FOR UPDATE SKIP LOCKED`.execute(trx);
  return rows.length === 1;
}

export interface SavedCursor extends LogPosition {
  /**
   * The transaction id of the cursor lies beyond every one this cluster has given out: its positions were carried
   * over from another cluster (a restore, a move), and the events recorded here from now on would sort behind it.
   */
  beyondCluster: boolean;
}

/** The sink's saved cursor; undefined until the sink is registered. */
export async function savedCursor(trx: Kysely<WalflowDatabase>, sink: string): Promise<SavedCursor | undefined> {
  const { rows } = await sql<SavedCursor>`
    SELECT recorded_xid::text AS "recordedXid", commit_lsn::text AS "commitLsn", tx_position AS "txPosition", event_id::text AS "eventId",
           recorded_xid >= pg_snapshot_xmax(pg_current_snapshot()) AS "beyondCluster"
      FROM walflow.sink_cursors WHERE sink = ${sink}`.execute(trx);
  return rows[0];
}

/**
 * Registers a new sink at the end of the log as it is now. The registration lock waits for every recording
 * transaction that decided, without this cursor, to give its events no recorded_xid, and holds off new ones until
 * the caller commits: commit at once, so that dispatch waits no longer than that.
 */
export async function registerCursor(trx: Kysely<WalflowDatabase>, sink: string): Promise<void> {
  // Registering a sink and the dispatcher's choice to give a batch's events a recorded_xid exclude each other:
  // walflow.recording_xid() holds this lock in ROW SHARE mode (migration 0044).
  await sql`LOCK TABLE walflow.sink_cursors IN EXCLUSIVE MODE`.execute(trx);
  await sql`
    INSERT INTO walflow.sink_cursors (sink, recorded_xid, commit_lsn, tx_position, event_id)
    SELECT ${sink}, coalesce(last.recorded_xid, '0'), coalesce(last.commit_lsn, '0/0'), coalesce(last.tx_position, -1),
           coalesce(last.id, '00000000-0000-0000-0000-000000000000')
      FROM (SELECT 1) AS one
      LEFT JOIN LATERAL (
        SELECT recorded_xid, commit_lsn, tx_position, id FROM walflow.events
         WHERE recorded_xid IS NOT NULL AND ${FINISHED}
         ORDER BY recorded_xid DESC, commit_lsn DESC, tx_position DESC, id DESC LIMIT 1) AS last ON true`.execute(trx);
}

/**
 * Up to `limits.events` events after the position, in recording order, from finished transactions only, and no more
 * of them than `limits.bytes` of text holds (pageOf).
 */
export async function eventsAfter(trx: Kysely<WalflowDatabase>, after: LogPosition, limits: PageLimits): Promise<LoggedEvent[]> {
  const events = sql`
    SELECT * FROM walflow.events
     WHERE recorded_xid IS NOT NULL AND ${FINISHED} AND ${afterPosition(after)}
     ORDER BY ${ORDER} LIMIT ${limits.events}`;
  const { rows } = await pageOf(events, ORDER, limits).execute(trx);
  return rows.map((row) => ({ ...row, recordedXid: row.recordedXid as string, eventId: row.id }));
}

/** Saves the cursor past `last`; false when the sink's cursor row is gone (deleted while the round published). */
export async function saveCursor(trx: Kysely<WalflowDatabase>, sink: string, last: LogPosition, published: number): Promise<boolean> {
  const { numAffectedRows } = await sql`
    UPDATE walflow.sink_cursors
       SET recorded_xid = ${last.recordedXid}::xid8, commit_lsn = ${last.commitLsn}::pg_lsn, tx_position = ${last.txPosition},
           event_id = ${last.eventId}::uuid, published = published + ${published}, updated_at = now()
     WHERE sink = ${sink}`.execute(trx);
  return numAffectedRows === 1n;
}

function afterPosition(position: LogPosition) {
  return sql<boolean>`(${ORDER}) > (${position.recordedXid}::xid8, ${position.commitLsn}::pg_lsn, ${position.txPosition}, ${position.eventId}::uuid)`;
}
