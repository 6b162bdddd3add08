import type { EventEnvelope } from '@walflow/core';
import { identifierProblem } from '@walflow/outbox';

/**
 * The aggregate an event caused by `cause` inherits: the cause's, unless a name of it is one emit refuses today
 * (identifierProblem) — SQL writers stored empty names, and names of up to about 2.7 kB were recorded before
 * migration 0028. Such a name would make emit refuse the follow-up, after a mail was sent or while a death is
 * recorded, so the follow-up carries no aggregate instead.
 */
export function inheritedAggregate(cause: Pick<EventEnvelope, 'aggregateType' | 'aggregateId'>): { aggregateType?: string; aggregateId?: string } {
  return {
    ...(storable(cause.aggregateType) ? { aggregateType: cause.aggregateType } : {}),
    ...(storable(cause.aggregateId) ? { aggregateId: cause.aggregateId } : {}),
  };
}

function storable(name: string | null): name is string {
  return name !== null && identifierProblem(name) === null;
}
