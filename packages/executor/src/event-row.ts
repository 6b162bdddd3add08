import { parseLsn, type EventEnvelope, type EventMetadata } from '@walflow/core';

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
