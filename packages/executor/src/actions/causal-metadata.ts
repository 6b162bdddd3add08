import type { EventEnvelope, EventMetadata } from '@walflow/core';
import { chainOf, eventDepth } from '../decide.js';

/** The metadata of an event a run emits: one step further down its cause's chain. */
export function causalMetadata(cause: EventEnvelope, workflowId: string, runId: string): EventMetadata {
  return {
    actorId: cause.metadata.actorId,
    correlationId: chainOf(cause),
    causationId: cause.id,
    depth: eventDepth(cause) + 1,
    workflowId,
    runId,
  };
}
