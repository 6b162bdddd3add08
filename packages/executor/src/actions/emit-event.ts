import { isJsonObject, WalflowError } from '@walflow/core';
import { emitCaused } from '@walflow/outbox';
import { renderTemplate } from '../template.js';
import type { EmitEventAction } from '../workflow-definition.js';
import type { TransactionalAction } from './action.js';
import { inheritedAggregate } from '../inherited-aggregate.js';
import { causalMetadata } from './causal-metadata.js';

/**
 * Emits a new event through the outbox, in the run's own transaction, carrying the causal chain: the loop
 * guard reads `depth`, explain follows `causationId`.
 */
export const emitEventAction: TransactionalAction<EmitEventAction> = async (action, { event, workflow, runId, replayId, trx }) => {
  const payload = renderTemplate(action.payload, event);
  if (!isJsonObject(payload)) throw new WalflowError('action_failed', 'emit_event payload must render to a JSON object');
  // Rendered names are the workflow's: one the outbox refuses fails the action. An empty one, or one the event
  // has no value for (null), is no aggregate.
  const rendered = (template: string | undefined, inherited: string | undefined): string | undefined => {
    if (template === undefined) return inherited;
    const value = renderTemplate(template, event);
    return value === null || value === undefined || value === '' ? undefined : typeof value === 'string' ? value : JSON.stringify(value);
  };
  const inherited = inheritedAggregate(event);
  const aggregateType = rendered(action.aggregateType, inherited.aggregateType);
  const aggregateId = rendered(action.aggregateId, inherited.aggregateId);
  const id = await emitCaused(trx, {
    type: action.event,
    payload,
    tenantId: event.tenantId,
    ...(aggregateType === undefined ? {} : { aggregateType }),
    ...(aggregateId === undefined ? {} : { aggregateId }),
    metadata: causalMetadata(event, workflow.id, runId, replayId),
  });
  return { eventId: id, type: action.event };
};
