import type { DecisionOutcome, EventEnvelope } from '@walflow/core';
import type { CompiledExpressions } from './compile-workflow.js';
import type { CompiledExpression } from './expressions/compile-expression.js';
import { evaluateCondition, evaluateKey } from './expressions/evaluate-condition.js';
import type { StoredWorkflow, UnreadableWorkflow } from './workflow-store.js';

export interface Decision {
  outcome: DecisionOutcome;
  reason: string;
  detail: Record<string, unknown>;
}

export interface DecideOptions {
  /** Events this many workflow runs away from an application write trigger nothing. */
  maxDepth: number;
  /**
   * A replay that fires every match (`--ignore-guards`): bypass, cooldown and rate-limit keys are not evaluated,
   * so an event that lacks what they read fires too. @default false
   */
  ignoreGuards?: boolean;
}

export type IndexedWorkflow = StoredWorkflow & { compiled: CompiledExpressions };

/** What the guards kept in PostgreSQL (chain, cooldown, rate limits, concurrency when claimed) still have to decide. */
export interface GuardRequest {
  bypassed: boolean;
  cooldownKey: string;
  rateLimitKeys: string[];
  /** Recorded on the run: workers count running runs per (workflow, this key). */
  concurrencyKey: string;
}

export type Verdict = { kind: 'decided'; decision: Decision } | { kind: 'guarded'; guards: GuardRequest };

/**
 * The part of a decision that needs only the workflow and the event: status, depth, condition, bypass and
 * the guard keys. Pure; the dispatcher asks the guard state for the rest.
 */
export function decide(workflow: IndexedWorkflow, event: EventEnvelope, options: DecideOptions): Verdict {
  if (workflow.status !== 'active') return decided('inactive', `workflow is ${workflow.status}`, { status: workflow.status });
  const depth = eventDepth(event);
  if (depth >= options.maxDepth) {
    return decided('loop_blocked', `event is ${depth} workflow runs deep; the limit is ${options.maxDepth}`, {
      depth,
      maxDepth: options.maxDepth,
      causationId: event.metadata.causationId ?? null,
    });
  }
  const { condition, bypass, cooldownKey, rateLimitKeys, concurrencyKey } = workflow.compiled;
  if (condition) {
    const result = evaluateCondition(condition, event);
    if (!result.ok) return decided('condition_error', `condition failed: ${result.error}`, { condition: condition.source, error: result.error });
    if (!result.value) return decided('condition_false', 'condition is false', { condition: condition.source });
  }
  const ignoreGuards = options.ignoreGuards === true;
  let bypassed = false;
  if (bypass && !ignoreGuards) {
    const result = evaluateCondition(bypass, event);
    if (!result.ok) return decided('condition_error', `bypass failed: ${result.error}`, { bypass: bypass.source, error: result.error });
    bypassed = result.value;
  }
  // Written out rather than as a list of (field, expression) pairs built per call: this runs for every matching
  // workflow of every event.
  const cooldown = ignoreGuards ? '' : guardKey('cooldown.key', cooldownKey, event);
  if (typeof cooldown !== 'string') return cooldown;
  const rateLimitValues: string[] = [];
  // A bypass skips the limits (it restarts the cooldown, whose key it needs): their keys are not asked for, so a
  // critical event that lacks what they read still fires.
  for (let index = 0; !bypassed && !ignoreGuards && index < rateLimitKeys.length; index++) {
    const key = guardKey(`rateLimits.${index}.key`, rateLimitKeys[index], event);
    if (typeof key !== 'string') return key;
    rateLimitValues.push(key);
  }
  const concurrency = guardKey('concurrency.key', concurrencyKey, event);
  if (typeof concurrency !== 'string') return concurrency;
  return { kind: 'guarded', guards: { bypassed, cooldownKey: cooldown, rateLimitKeys: rateLimitValues, concurrencyKey: concurrency } };
}

/** The decision for a workflow whose stored definition cannot be read or compiled: it acts on nothing. */
export function decideUnreadable(workflow: UnreadableWorkflow): Decision {
  if (workflow.status !== 'active') return { outcome: 'inactive', reason: `workflow is ${workflow.status}`, detail: { status: workflow.status } };
  return {
    outcome: 'inactive',
    reason: `the workflow's stored definition cannot be read (apply it again): ${workflow.unreadable}`,
    detail: { status: 'unreadable', error: workflow.unreadable },
  };
}

function decided(outcome: DecisionOutcome, reason: string, detail: Record<string, unknown> = {}): Verdict {
  return { kind: 'decided', decision: { outcome, reason, detail } };
}

/** A guard's key for this event (empty without an expression), or the verdict that it could not be had. */
function guardKey(field: string, expression: CompiledExpression | undefined, event: EventEnvelope): string | Verdict {
  if (!expression) return '';
  const result = evaluateKey(expression, event);
  return result.ok ? result.key : decided('condition_error', `${field} failed: ${result.error}`, { [field]: expression.source, error: result.error });
}

export function eventDepth(event: EventEnvelope): number {
  const depth = event.metadata.depth;
  return typeof depth === 'number' && Number.isInteger(depth) && depth > 0 ? depth : 0;
}

/** The causal chain an event belongs to: its correlation id, or itself when an application wrote it. */
export function chainOf(event: EventEnvelope): string {
  const correlation = event.metadata.correlationId;
  return typeof correlation === 'string' ? correlation : event.id;
}

/**
 * The replay that started the event's chain, when a replay's run emitted its first caused event. Events caused
 * further down carry it on (causalMetadata), although the runs between them are live: the loop guard then counts
 * that replay's runs, not the live chain's (guard-state.ts, ranInChain).
 */
export function chainReplayOf(event: EventEnvelope): string | null {
  const replay = event.metadata.replayId;
  return typeof replay === 'string' && chainOf(event) !== event.id ? replay : null;
}
