import { parseLsn, type EventEnvelope } from '@walflow/core';
import { describe, expect, it } from 'vitest';
import { decide } from './decide.js';
import { parseWorkflowDefinition } from './workflow-definition.js';
import type { StoredWorkflow } from './workflow-store.js';

const definition = parseWorkflowDefinition({ name: 'w', trigger: { event: 'a.b' }, actions: [{ type: 'emit_event', event: 'c.d' }] });
const workflow: StoredWorkflow = { id: 'w1', tenantId: 'default', name: 'w', status: 'active', triggerEvent: 'a.b', version: 1, definition, updatedAt: new Date(0) };
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
  it('fires an active workflow', () => {
    expect(decide(workflow, event(), { maxDepth: 3 }).outcome).toBe('fired');
  });

  it('records a paused workflow as inactive', () => {
    expect(decide({ ...workflow, status: 'paused' }, event(), { maxDepth: 3 })).toMatchObject({ outcome: 'inactive', reason: 'workflow is paused' });
  });

  it('blocks an event at the depth limit and says why', () => {
    expect(decide(workflow, event({ depth: 2 }), { maxDepth: 3 }).outcome).toBe('fired');
    expect(decide(workflow, event({ depth: 3, causationId: 'e0' }), { maxDepth: 3 })).toMatchObject({
      outcome: 'loop_blocked',
      detail: { depth: 3, maxDepth: 3, causationId: 'e0' },
    });
  });

  it('treats a depth that is not a positive whole number as 0', () => {
    expect(decide(workflow, event({ depth: 'deep' }), { maxDepth: 1 }).outcome).toBe('fired');
    expect(decide(workflow, event({ depth: -5 }), { maxDepth: 1 }).outcome).toBe('fired');
  });
});
