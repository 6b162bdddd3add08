import type { WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';
import type { SinkEvent } from './sink-message.js';

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
 * rights on that table cannot take, for the caller's transaction, cursor save included.
 */
export async function tryLockSink(trx: Kysely<WalflowDatabase>, sink: string): Promise<boolean> {
  const { rows } = await sql`SELECT sink FROM walflow.sink_publishers WHERE sink = ${sink} FOR UPDATE SKIP LOCKED`.execute(trx);
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

/** How many events a round reads, and how much of their text it may hold. */
export interface PageLimits {
  events: number;
  /** Payload and metadata in bytes: past this a page ends, after its first event whatever its size. */
  bytes: number;
  /** A payload larger than a message may be stays in the database: only its size is read. */
  messageBytes: number;
}

/**
 * Up to `limits.events` events after the position, in recording order, from finished transactions only, and no more
 * of them than `limits.bytes` of text holds: events of up to 32 MiB of payload each would otherwise fill the
 * process at every round, and again after every restart. Of the metadata only what the message carries is read.
 */
export async function eventsAfter(trx: Kysely<WalflowDatabase>, after: LogPosition, limits: PageLimits): Promise<LoggedEvent[]> {
  // Innermost the page by count, its payloads printed once; then what each event holds in this process; then the
  // running total, which ends the page.
  const { rows } = await sql<LoggedEvent>`
    SELECT id, event_type AS type, tenant_id AS "tenantId", aggregate_type AS "aggregateType", aggregate_id AS "aggregateId",
           to_json(committed_at) #>> '{}' AS "committedAt", recorded_xid::text AS "recordedXid", commit_lsn::text AS "commitLsn",
           tx_position AS "txPosition", id AS "eventId",
           CASE WHEN payload_bytes <= ${limits.messageBytes} THEN payload_json END AS "payloadJson", payload_bytes AS "payloadBytes", metadata
      FROM (SELECT sized.*, sum(held_bytes) OVER (ORDER BY ${ORDER} ROWS UNBOUNDED PRECEDING) AS running
              FROM (SELECT page.*, octet_length(payload_json) AS payload_bytes,
                           CASE WHEN octet_length(payload_json) <= ${limits.messageBytes} THEN octet_length(payload_json) ELSE 0 END
                             + octet_length(metadata::text) AS held_bytes
                      FROM (SELECT id, event_type, tenant_id, aggregate_type, aggregate_id, committed_at, recorded_xid, commit_lsn,
                                   tx_position, payload::text AS payload_json,
                                   jsonb_strip_nulls(jsonb_build_object('actorId', metadata->'actorId',
                                     'correlationId', metadata->'correlationId', 'causationId', metadata->'causationId')) AS metadata
                              FROM walflow.events
                             WHERE recorded_xid IS NOT NULL AND ${FINISHED} AND ${afterPosition(after)}
                             ORDER BY ${ORDER}
                             LIMIT ${limits.events}) AS page) AS sized) AS counted
     WHERE running - held_bytes < ${limits.bytes}
     ORDER BY ${ORDER}`.execute(trx);
  return rows;
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
