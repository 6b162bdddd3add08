import type { WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';

/** How far a sink is behind the event log. */
export interface SinkLag {
  /** Recorded events not yet published, counted up to PENDING_COUNT_LIMIT. */
  pending: number;
  /** Age of the oldest recorded event not yet published (from when walflow recorded it); 0 when none. */
  seconds: number;
  /** Events published since the sink started. */
  published: number;
  /** ISO-8601 time of the last cursor save. */
  savedAt: string;
}

/** A backlog is counted this far and no further, so a long outage does not make every health refresh slow. */
export const PENDING_COUNT_LIMIT = 100_000;

/** The lag of the sink named `sink`, or null when it never ran against this database. */
export async function measureSinkLag(db: Kysely<WalflowDatabase>, sink: string): Promise<SinkLag | null> {
  const { rows } = await sql<{ pending: number; seconds: number; published: string; saved_at: string }>`
    SELECT (SELECT count(*) FROM (
              SELECT 1 FROM walflow.events e
               WHERE e.recorded_xid IS NOT NULL
                 AND (e.recorded_xid, e.commit_lsn, e.tx_position, e.id) > (c.recorded_xid, c.commit_lsn, c.tx_position, c.event_id)
               LIMIT ${PENDING_COUNT_LIMIT}) AS backlog)::int AS pending,
           coalesce((SELECT extract(epoch FROM now() - e.received_at) FROM walflow.events e
                      WHERE e.recorded_xid IS NOT NULL
                        AND (e.recorded_xid, e.commit_lsn, e.tx_position, e.id) > (c.recorded_xid, c.commit_lsn, c.tx_position, c.event_id)
                      ORDER BY e.recorded_xid, e.commit_lsn, e.tx_position, e.id LIMIT 1), 0)::float8 AS seconds,
           c.published::text AS published,
           to_json(c.updated_at) #>> '{}' AS saved_at
      FROM walflow.sink_cursors c WHERE c.sink = ${sink}`.execute(db);
  const row = rows[0];
  if (row === undefined) return null;
  return { pending: row.pending, seconds: Math.max(0, row.seconds), published: Number(row.published), savedAt: row.saved_at };
}
