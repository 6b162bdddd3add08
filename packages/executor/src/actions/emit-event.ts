import { isJsonObject, WalflowError } from '@walflow/core';
import { emitCaused } from '@walflow/outbox';
import { eventDepth } from '../decide.js';
import { renderTemplate } from '../template.js';
import type { ActionHandler } from './action.js';

/**
 * Emits a new event through the outbox, in the run's own transaction, carrying the causal chain: the loop
 * guard reads `depth`, explain follows `causationId`.
 */
export const emitEventAction: ActionHandler<{
  type: 'emit_event';
  event: string;
  payload: Record<string, unknown>;
  aggregateType?: string | undefined;
  aggregateId?: string | undefined;
}> = async (action, { event, workflow, runId, trx }) => {
  const payload = renderTemplate(action.payload, event);
  if (!isJsonObject(payload)) throw new WalflowError('action_failed', 'emit_event payload must render to a JSON object');
  const aggregateType = action.aggregateType === undefined ? event.aggregateType : String(renderTemplate(action.aggregateType, event));
  const aggregateId = action.aggregateId === undefined ? event.aggregateId : String(renderTemplate(action.aggregateId, event));
  await emitCaused(trx, {
    type: action.event,
    payload,
    tenantId: event.tenantId,
    ...(aggregateType === null ? {} : { aggregateType }),
    ...(aggregateId === null ? {} : { aggregateId }),
    metadata: {
      actorId: event.metadata.actorId,
      correlationId: event.metadata.correlationId ?? event.id,
      causationId: event.id,
      depth: eventDepth(event) + 1,
      workflowId: workflow.id,
      runId,
    },
  });
};
