import type { DispatchBatch, EventEnvelope, ParkedRow, WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';

/**
 * Parks the events of a batch whose id was committed before by another transaction, in the log or earlier in the
 * batch. An application may choose outbox ids; events are unique by (commit time, id), so such an event would be
 * recorded beside the first while its runs and decisions, unique by event id, were passed over without a word.
 * Called only when a batch met rows that exist, which is the only way a reused id shows. An event recorded
 * already under its own commit is that first transaction delivered again, not a reuse: it stays in the batch.
 */
export async function parkReusedEventIds(db: Kysely<WalflowDatabase>, batch: DispatchBatch): Promise<DispatchBatch> {
  if (batch.events.length === 0) return batch;
  const { rows } = await sql<{ position: number }>`
    SELECT b.position::int AS position
      FROM unnest(${batch.events.map((event) => event.id)}::uuid[], ${batch.events.map((event) => event.committedAt)}::timestamptz[]) WITH ORDINALITY AS b (id, committed_at, position)
     WHERE EXISTS (SELECT FROM walflow.events e WHERE e.id = b.id AND e.committed_at <> b.committed_at)
       AND NOT EXISTS (SELECT FROM walflow.events e WHERE e.id = b.id AND e.committed_at = b.committed_at)`.execute(db);
  // Positions in the batch, from 1.
  const reusedInLog = new Set(rows.map((row) => row.position));
  const firstCommit = new Map<string, string>();
  const events: EventEnvelope[] = [];
  const parked: ParkedRow[] = [];
  for (const [index, event] of batch.events.entries()) {
    const first = firstCommit.get(event.id) ?? event.committedAt;
    firstCommit.set(event.id, first);
    if (reusedInLog.has(index + 1) || first !== event.committedAt) parked.push(reused(event));
    else events.push(event);
  }
  return parked.length === 0 ? batch : { ...batch, events, parked: [...batch.parked, ...parked] };
}

function reused(event: EventEnvelope): ParkedRow {
  return {
    outboxId: event.id,
    tenantId: event.tenantId,
    eventType: event.type,
    code: 'event_id_reused',
    reason: `event id ${event.id} was already committed by another transaction: emit the event again under a new id`,
    raw: {
      id: event.id,
      tenant_id: event.tenantId,
      event_type: event.type,
      aggregate_type: event.aggregateType,
      aggregate_id: event.aggregateId,
      // The row as committed, as wal2json prints it, where the event has it.
      payload: event.payloadJson ?? event.payload,
      metadata: event.metadataJson ?? event.metadata,
    },
    commit: { xid: event.xid, commitLsn: event.commitLsn, committedAt: event.committedAt },
  };
}
