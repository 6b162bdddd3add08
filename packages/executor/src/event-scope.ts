import type { EventEnvelope } from '@walflow/core';

/** The one name templates and CEL expressions see at their root. */
export const EVENT_VARIABLE = 'event';

/** The fields of the `event` variable. */
export const EVENT_FIELDS = ['id', 'type', 'tenantId', 'aggregateType', 'aggregateId', 'payload', 'metadata', 'committedAt'] as const;

/** The `event` variable of templates and CEL (EVENT_FIELDS): the names match the events table (`event.tenantId`). */
export function templateScope(event: EventEnvelope): Record<(typeof EVENT_FIELDS)[number], unknown> {
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
