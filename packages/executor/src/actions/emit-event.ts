import { isJsonObject, WalflowError } from '@walflow/core';
import { emitCaused } from '@walflow/outbox';
import { renderTemplate } from '../template.js';
import type { EmitEventAction } from '../workflow-definition.js';
import type { TransactionalAction } from './action.js';
import { causalMetadata } from './causal-metadata.js';

/**
 * Emits a new event through the outbox, in the run's own transaction, carrying the causal chain: the loop
 * guard reads `depth`, explain follows `causationId`.
 */
export const emitEventAction: TransactionalAction<EmitEventAction> = async (action, { event, workflow, runId, replayId, trx }) => {
  const payload = renderTemplate(action.payload, event);
  if (!isJsonObject(payload)) throw new WalflowError('action_failed', 'emit_event payload must render to a JSON object');
  const aggregateType = action.aggregateType === undefined ? event.aggregateType : String(renderTemplate(action.aggregateType, event));
  const aggregateId = action.aggregateId === undefined ? event.aggregateId : String(renderTemplate(action.aggregateId, event));
  const id = await emitCaused(trx, {
    type: action.event,
    payload,
    tenantId: event.tenantId,
    // An empty name is no aggregate: the outbox refuses empty names, and SQL writers may have stored one.
    ...(aggregateType === null || aggregateType === '' ? {} : { aggregateType }),
    ...(aggregateId === null || aggregateId === '' ? {} : { aggregateId }),
    metadata: causalMetadata(event, workflow.id, runId, replayId),
  });
  return { eventId: id, type: action.event };
};
