import { sql, type Expression, type RawBuilder } from 'kysely';
import type { SinkEvent } from './sink-message.js';

/** The most payload and metadata a page holds in this process, in bytes, after its first event (sink and replay). */
export const DEFAULT_PAGE_BYTES = 32 * 1024 * 1024;

/** How many events a page holds, and how much of their text it may hold. */
export interface PageLimits {
  events: number;
  /** Payload and metadata in bytes: past this a page ends, after its first event whatever its size. */
  bytes: number;
  /** A payload larger than a message may be stays in the database: only its size is read. */
  messageBytes: number;
}

/** A page's event with its place in the log, as the sink's cursor and a replay's paging read it. */
export interface PagedEvent extends SinkEvent {
  recordedXid: string | null;
  commitLsn: string;
  txPosition: number;
}

/**
 * The events of `events` (rows of walflow.events in `order`, limited to `limits.events`), as many as `limits.bytes`
 * of text holds: events of up to 32 MiB of payload each would otherwise fill the process at every page. Each
 * payload is printed once, and of the metadata only what a message carries is read.
 */
export function pageOf(events: Expression<unknown>, order: RawBuilder<unknown>, limits: PageLimits): RawBuilder<PagedEvent> {
  // Innermost the page by count; then its text; then what each event holds in this process; then the running total,
  // which ends the page.
  return sql<PagedEvent>`
    SELECT id, event_type AS type, tenant_id AS "tenantId", aggregate_type AS "aggregateType", aggregate_id AS "aggregateId",
           to_json(committed_at) #>> '{}' AS "committedAt", recorded_xid::text AS "recordedXid", commit_lsn::text AS "commitLsn",
           tx_position AS "txPosition",
           CASE WHEN payload_bytes <= ${limits.messageBytes} THEN payload_json END AS "payloadJson", payload_bytes AS "payloadBytes", metadata
      FROM (SELECT sized.*, sum(held_bytes) OVER (ORDER BY ${order} ROWS UNBOUNDED PRECEDING) AS running
              FROM (SELECT page.*, octet_length(payload_json) AS payload_bytes,
                           CASE WHEN octet_length(payload_json) <= ${limits.messageBytes} THEN octet_length(payload_json) ELSE 0 END
                             + octet_length(metadata::text) AS held_bytes
                      FROM (SELECT id, event_type, tenant_id, aggregate_type, aggregate_id, committed_at, recorded_xid, commit_lsn,
                                   tx_position, payload::text AS payload_json,
                                   jsonb_strip_nulls(jsonb_build_object('actorId', metadata->'actorId',
                                     'correlationId', metadata->'correlationId', 'causationId', metadata->'causationId')) AS metadata
                              FROM (${events}) AS rows) AS page) AS sized) AS counted
     WHERE running - held_bytes < ${limits.bytes}
     ORDER BY ${order}`;
}
