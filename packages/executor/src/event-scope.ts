import type { EventEnvelope } from '@walflow/core';

/** The one name templates and CEL expressions see at their root. */
export const EVENT_VARIABLE = 'event';

/** The `event` variable of templates and CEL: the names match the events table (`event.tenantId`). */
export function templateScope(event: EventEnvelope): Record<string, unknown> {
  return {
    id: event.id,
    type: event.type,
    tenantId: event.tenantId,
    aggregateType: event.aggregateType,
    aggregateId: event.aggregateId,
    payload: event.payload,
    metadata: event.metadata,
    committedAt: event.committedAt,
  };
}
