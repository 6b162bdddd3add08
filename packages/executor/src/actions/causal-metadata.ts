import type { EventEnvelope, EventMetadata } from '@walflow/core';
import { chainOf, chainReplayOf, eventDepth } from '../decide.js';

/**
 * The metadata of an event a run emits: one step further down its cause's chain, and in the replay that started
 * the chain, if any: the run's own replay, else the one its cause carries.
 */
export function causalMetadata(cause: EventEnvelope, workflowId: string, runId: string, replayId: string | null = null): EventMetadata {
  const chainReplay = replayId ?? chainReplayOf(cause);
  return {
    actorId: cause.metadata.actorId,
    correlationId: chainOf(cause),
    causationId: cause.id,
    depth: eventDepth(cause) + 1,
    workflowId,
    runId,
    ...(chainReplay === null ? {} : { replayId: chainReplay }),
  };
}
