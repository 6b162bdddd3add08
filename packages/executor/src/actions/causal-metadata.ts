import type { EventEnvelope, EventMetadata } from '@walflow/core';
import { chainOf, eventDepth } from '../decide.js';

/** The metadata of an event a run emits: one step further down its cause's chain (and its replay, if any). */
export function causalMetadata(cause: EventEnvelope, workflowId: string, runId: string, replayId: string | null = null): EventMetadata {
  return {
    actorId: cause.metadata.actorId,
    correlationId: chainOf(cause),
    causationId: cause.id,
    depth: eventDepth(cause) + 1,
    workflowId,
    runId,
    ...(replayId === null ? {} : { replayId }),
  };
}
