import { CAUSAL_METADATA_KEYS, uuidV7, WalflowError, type EmitEvent, type EventMetadata } from '@walflow/core';
import { assertEventIdentifiers } from './event-identifiers.js';
import { objectJson } from './object-json.js';

export interface OutboxRow {
  id: string;
  /** Undefined: the column default, the session's walflow.tenant_id or 'default'. */
  tenant_id: string | undefined;
  event_type: string;
  aggregate_type: string | null;
  aggregate_id: string | null;
  /** JSON text, checked as it was written. */
  payload: string;
  metadata: string;
}

/** Turns a payload into the JSON text the outbox stores, or refuses it; `subject` names it in messages. */
export type PayloadJson = (payload: unknown, subject: string) => string;

/**
 * The metadata an application's event carries: its own `metadata`, and `actorId`. A causal key is refused rather
 * than dropped, as the outbox's trigger would: the caller learns at once that it cannot set it.
 */
export function applicationMetadata(event: EmitEvent): EventMetadata {
  const metadata: unknown = event.metadata ?? {};
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new WalflowError('payload_invalid', `metadata of ${event.type} must be a JSON object`);
  }
  const causal = CAUSAL_METADATA_KEYS.find((key) => key in metadata);
  if (causal !== undefined) {
    throw new WalflowError('payload_invalid', `metadata of ${event.type} may not set ${causal}: walflow sets it on the events its actions emit`);
  }
  return { ...metadata, ...(event.actorId === undefined ? {} : { actorId: event.actorId }) };
}

/**
 * Checks an event and turns it into the row emit inserts, or throws before anything is written. The typed
 * outbox passes a `payloadJson` that also validates the payload against its catalog.
 */
export function toOutboxRow(event: EmitEvent, metadata: EventMetadata, payloadJson: PayloadJson = objectJson): OutboxRow {
  assertEventIdentifiers(event);
  return {
    id: uuidV7(),
    // A null tenant from JavaScript callers is absent, as the checks took it: the column default applies.
    tenant_id: event.tenantId ?? undefined,
    event_type: event.type,
    aggregate_type: event.aggregateType ?? null,
    aggregate_id: event.aggregateId ?? null,
    payload: payloadJson(event.payload, `payload of ${event.type}`),
    metadata: objectJson(metadata, `metadata of ${event.type}`),
  };
}

/**
 * Each event's row, or the first refusal, naming which of the events it is (`events[3]: …`) when there are several:
 * one of a batch of hundreds of the same type is otherwise not to be found.
 */
export function toOutboxRows(events: readonly EmitEvent[], toRow: (event: EmitEvent) => OutboxRow): OutboxRow[] {
  return events.map((event, index) => {
    try {
      return toRow(event);
    } catch (error) {
      if (events.length === 1 || !(error instanceof WalflowError)) throw error;
      throw new WalflowError(error.code, `events[${index}]: ${error.message}`, { cause: error, details: error.details });
    }
  });
}
