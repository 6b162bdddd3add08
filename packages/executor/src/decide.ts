import type { DecisionOutcome, EventEnvelope } from '@walflow/core';
import type { StoredWorkflow } from './workflow-store.js';

export interface Decision {
  outcome: DecisionOutcome;
  reason: string;
  detail: Record<string, unknown>;
}

export interface DecideOptions {
  /** Events this many workflow runs away from an application write trigger nothing. */
  maxDepth: number;
}

/** Why a matching workflow does or does not run for an event. Pure: the dispatcher records the answer. */
export function decide(workflow: StoredWorkflow, event: EventEnvelope, options: DecideOptions): Decision {
  if (workflow.status !== 'active') {
    return { outcome: 'inactive', reason: `workflow is ${workflow.status}`, detail: { status: workflow.status } };
  }
  const depth = eventDepth(event);
  if (depth >= options.maxDepth) {
    return {
      outcome: 'loop_blocked',
      reason: `event is ${depth} workflow runs deep; the limit is ${options.maxDepth}`,
      detail: { depth, maxDepth: options.maxDepth, causationId: event.metadata.causationId ?? null },
    };
  }
  return { outcome: 'fired', reason: `trigger ${workflow.triggerEvent} matched`, detail: {} };
}

export function eventDepth(event: EventEnvelope): number {
  const depth = event.metadata.depth;
  return typeof depth === 'number' && Number.isInteger(depth) && depth > 0 ? depth : 0;
}
