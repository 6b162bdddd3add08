import {
  DEFAULT_TENANT,
  isJsonObject,
  isRunEvent,
  MAX_JSON_DEPTH,
  nestsDeeperThan,
  type CommitPosition,
  type EventCatalog,
  type EventEnvelope,
  type ParkedRow,
} from '@walflow/core';
import { inexactNumberPath } from './inexact-numbers.js';

export type MappedRow = { kind: 'event'; event: EventEnvelope } | { kind: 'parked'; row: ParkedRow };

export interface OutboxRowContext {
  commit: CommitPosition;
  /** Position of the row among the outbox rows of its transaction. */
  position: number;
  /** Without a catalog, any event type is accepted whose payload is a JSON object. */
  catalog?: EventCatalog | undefined;
}

/**
 * Turns one inserted outbox row (column values as text, json columns as JSON text) into a named event, or parks
 * it with the reason it cannot be one. Never throws: bad data must not stop the stream.
 */
export function mapOutboxRow(raw: Readonly<Record<string, unknown>>, context: OutboxRowContext): MappedRow {

  const id = typeof raw.id === 'string' ? raw.id : null;
  const tenantId = typeof raw.tenant_id === 'string' ? raw.tenant_id : DEFAULT_TENANT;
  const type = typeof raw.event_type === 'string' ? raw.event_type : null;
  const park = (code: ParkedRow['code'], reason: string): MappedRow => ({
    kind: 'parked',
    row: { outboxId: id, tenantId, eventType: type, code, reason, raw, commit: context.commit },
  });

  if (id === null || type === null) return park('message_invalid', 'outbox row without id or event_type');
  const payloadJson = jsonText(raw.payload);
  const payload = parseJsonColumn(payloadJson);
  if (payloadJson === null || !isJsonObject(payload)) return park('payload_invalid', `payload of ${type} is not a JSON object`);
  const metadataJson = jsonText(raw.metadata ?? '{}');
  const metadata = parseJsonColumn(metadataJson);
  if (metadataJson === null || !isJsonObject(metadata)) return park('payload_invalid', `metadata of ${type} is not a JSON object`);
  for (const [column, text, value] of [['payload', payloadJson, payload], ['metadata', metadataJson, metadata]] as const) {
    // Before any walk over the value: a recursive one could overflow the stack.
    if (nestsDeeperThan(text)) return park('payload_invalid', `${column} of ${type} nests deeper than ${MAX_JSON_DEPTH} levels`);
    const inexact = inexactNumberPath(text, value);
    if (inexact !== null) {
      return park('payload_invalid', `${column} of ${type} holds at ${inexact} a number JavaScript cannot hold exactly (beyond ±2^53 - 1): send it as a string`);
    }
  }
  // The events a run emits about itself are walflow's, whatever the application's catalog lists.
  if (context.catalog && !isRunEvent(type, metadata)) {
    const check = context.catalog.check(type, payload);
    if (!check.ok) return park(check.code, check.reason);
  }
  return {
    kind: 'event',
    event: {
      id,
      type,
      tenantId,
      aggregateType: typeof raw.aggregate_type === 'string' ? raw.aggregate_type : null,
      aggregateId: typeof raw.aggregate_id === 'string' ? raw.aggregate_id : null,
      payload,
      metadata,
      position: context.position,
      ...context.commit,
      payloadJson,
      metadataJson,
    },
  };
}

/** Both decoders deliver json and jsonb columns as JSON text. */
function jsonText(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function parseJsonColumn(value: string | null): unknown {
  if (value === null) return undefined;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    return undefined;
  }
}
