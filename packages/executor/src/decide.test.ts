import { parseLsn, type EventEnvelope } from '@walflow/core';
import { describe, expect, it } from 'vitest';
import { compileWorkflow } from './compile-workflow.js';
import { decide, type IndexedWorkflow, type Verdict } from './decide.js';
import { parseWorkflowDefinition } from './workflow-definition.js';

const indexed = (overrides: Record<string, unknown> = {}): IndexedWorkflow => {
  const parsed = parseWorkflowDefinition({ name: 'w', trigger: { event: 'a.b' }, actions: [{ type: 'emit_event', event: 'c.d' }], ...overrides });
  return { id: 'w1', tenantId: 'default', name: 'w', status: parsed.status, pausedReason: null, triggerEvent: 'a.b', version: 1, definition: parsed, updatedAt: new Date(0), compiled: compileWorkflow(parsed) };
};
const workflow = indexed();
const outcome = (verdict: Verdict): string => (verdict.kind === 'decided' ? verdict.decision.outcome : 'guarded');
const event = (metadata: Record<string, unknown> = {}): EventEnvelope => ({
  id: 'e1',
  type: 'a.b',
  tenantId: 'default',
  aggregateType: null,
  aggregateId: null,
  payload: {},
  metadata,
  committedAt: '2026-11-26T00:00:00+00:00',
  commitLsn: parseLsn('0/1'),
  position: 0,
  xid: '1',
});

describe('decide', () => {
  it('hands an active workflow on to the guards, with its keys', () => {
    expect(decide(workflow, event(), { maxDepth: 3 })).toEqual({ kind: 'guarded', guards: { bypassed: false, cooldownKey: '', rateLimitKeys: [], concurrencyKey: '' } });
  });

  it('records a paused workflow as inactive', () => {
    expect(decide({ ...workflow, status: 'paused' }, event(), { maxDepth: 3 })).toMatchObject({
      kind: 'decided',
      decision: { outcome: 'inactive', reason: 'workflow is paused' },
    });
  });

  it('blocks an event at the depth limit and says why', () => {
    expect(outcome(decide(workflow, event({ depth: 2 }), { maxDepth: 3 }))).toBe('guarded');
    expect(decide(workflow, event({ depth: 3, causationId: 'e0' }), { maxDepth: 3 })).toMatchObject({
      decision: { outcome: 'loop_blocked', detail: { depth: 3, maxDepth: 3, causationId: 'e0' } },
    });
  });

  it('treats a depth that is not a positive whole number as 0', () => {
    expect(outcome(decide(workflow, event({ depth: 'deep' }), { maxDepth: 1 }))).toBe('guarded');
    expect(outcome(decide(workflow, event({ depth: -5 }), { maxDepth: 1 }))).toBe('guarded');
  });

  it('records a false condition, and an evaluation error, with the expression and the error', () => {
    const condition = 'has(event.payload.premium) && event.payload.premium > 1000.0';
    expect(decide(indexed({ condition }), event(), { maxDepth: 3 })).toMatchObject({ decision: { outcome: 'condition_false', detail: { condition } } });
    expect(decide(indexed({ condition: 'event.payload.missing == 1' }), event(), { maxDepth: 3 })).toMatchObject({
      decision: { outcome: 'condition_error', reason: expect.stringMatching(/missing/), detail: { condition: 'event.payload.missing == 1', error: expect.stringMatching(/missing/) } },
    });
  });

  it('evaluates bypass and the guard keys', () => {
    const guarded = indexed({
      bypass: "event.metadata.priority == 'critical'",
      cooldown: { seconds: 60, key: 'event.aggregateId' },
      rateLimits: [{ limit: 2, periodSeconds: 60, key: 'event.metadata.actorId' }, { limit: 10, periodSeconds: 3600 }],
    });
    expect(decide(guarded, event({ priority: 'normal', actorId: 'u1' }), { maxDepth: 3 })).toEqual({
      kind: 'guarded',
      guards: { bypassed: false, cooldownKey: 'null', rateLimitKeys: ['u1', ''], concurrencyKey: '' },
    });
    // A bypass skips the limits: a critical event without the actor its limit is keyed by still fires.
    expect(decide(guarded, event({ priority: 'critical' }), { maxDepth: 3 })).toEqual({
      kind: 'guarded',
      guards: { bypassed: true, cooldownKey: 'null', rateLimitKeys: [], concurrencyKey: '' },
    });
  });

  it('computes the concurrency key beside the guard keys, and records a key that fails as a condition error', () => {
    const limited = indexed({ rateLimits: [{ limit: 2, periodSeconds: 60, key: 'event.metadata.actorId' }], concurrency: { limit: 2, key: 'event.metadata.actorId' } });
    expect(decide(limited, event({ actorId: 'u7' }), { maxDepth: 3 })).toEqual({
      kind: 'guarded',
      guards: { bypassed: false, cooldownKey: '', rateLimitKeys: ['u7'], concurrencyKey: 'u7' },
    });
    expect(decide(indexed({ concurrency: { limit: 1, key: 'event.payload.missing' } }), event(), { maxDepth: 3 })).toMatchObject({
      decision: { outcome: 'condition_error', reason: expect.stringMatching(/^concurrency\.key failed/) },
    });
  });
});
