import { parseLsn, type EventEnvelope, type EventMetadata } from '@walflow/core';
import { sql } from 'kysely';

/** A walflow.events row as read for an envelope: commit time and LSN as text, so nothing loses precision. */
export interface EventRow {
  id: string;
  event_type: string;
  tenant_id: string;
  aggregate_type: string | null;
  aggregate_id: string | null;
  payload: Record<string, unknown>;
  metadata: EventMetadata;
  /** `to_json(committed_at) #>> '{}'`: ISO-8601 with microseconds. */
  committed_at: string;
  /** `commit_lsn::text` */
  commit_lsn: string;
  tx_position: number;
  /** `xid::text` */
  xid: string;
}

/** The selection that reads an EventRow from walflow.events, for every query that turns rows into envelopes. */
export const eventRowColumns = [
  'id',
  'event_type',
  'tenant_id',
  'aggregate_type',
  'aggregate_id',
  'payload',
  'metadata',
  sql<string>`to_json(committed_at) #>> '{}'`.as('committed_at'),
  sql<string>`commit_lsn::text`.as('commit_lsn'),
  'tx_position',
  sql<string>`xid::text`.as('xid'),
] as const;

export function toEventEnvelope(row: EventRow): EventEnvelope {
  return {
    id: row.id,
    type: row.event_type,
    tenantId: row.tenant_id,
    aggregateType: row.aggregate_type,
    aggregateId: row.aggregate_id,
    payload: row.payload,
    metadata: row.metadata,
    committedAt: row.committed_at,
    commitLsn: parseLsn(row.commit_lsn),
    position: row.tx_position,
    xid: row.xid,
  };
}
