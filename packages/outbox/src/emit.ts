import type { EmitEvent, EventMetadata } from '@walflow/core';
import { insertOutboxRows } from './outbox-insert.js';
import { applicationMetadata, toOutboxRow, toOutboxRows } from './outbox-row.js';
import type { OutboxWriter } from './outbox-writer.js';

/** An event with the causal metadata only walflow itself may set (actions emitting events). */
export interface EmitWithMetadata extends EmitEvent {
  metadata?: EventMetadata;
}

/**
 * Writes one event to the outbox through the caller's transaction and returns its id. It never opens a
 * transaction of its own: the event commits, or rolls back, with the caller's write.
 */
export async function emit(writer: OutboxWriter, event: EmitEvent): Promise<string> {
  const [id] = await emitMany(writer, [event]);
  return id as string;
}

/**
 * Writes several events, any number, in one statement; returns their ids in order. Every event is checked
 * before any is written, and like emit it never opens a transaction.
 */
export async function emitMany(writer: OutboxWriter, events: readonly EmitEvent[]): Promise<string[]> {
  return insertOutboxRows(writer, toOutboxRows(events, (event) => toOutboxRow(event, applicationMetadata(event))));
}

/** For walflow's own actions: the event carries causal metadata (depth, causation, correlation). */
export async function emitCaused(writer: OutboxWriter, event: EmitWithMetadata): Promise<string> {
  const [id] = await insertOutboxRows(writer, [toOutboxRow(event, { ...event.metadata, actorId: event.actorId ?? event.metadata?.actorId })]);
  return id as string;
}
