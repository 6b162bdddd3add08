import { describe, expect, it } from 'vitest';
import { parseWorkflowDefinition } from './workflow-definition.js';

const valid = {
  tenant: 't1',
  name: 'welcome-agent',
  status: 'active',
  trigger: { event: 'recruit.graduated_to_agent' },
  actions: [{ type: 'emit_event', event: 'agent.onboarding_started', payload: { recruitId: '{{event.aggregateId}}' } }],
};

describe('parseWorkflowDefinition', () => {
  it('accepts the documented format and fills defaults', () => {
    expect(parseWorkflowDefinition(valid)).toEqual({ ...valid, retry: { maxAttempts: 5 } });
    expect(parseWorkflowDefinition({ name: 'n', trigger: { event: 'a.b' }, actions: [{ type: 'emit_event', event: 'c.d' }] })).toMatchObject({
      tenant: 'default',
      status: 'active',
      actions: [{ payload: {} }],
    });
  });

  it('names each offending field', () => {
    expect(() => parseWorkflowDefinition({ ...valid, status: 'on', actions: [{ type: 'emit_event' }] })).toThrow(/status: .*; actions\.0\.event/);
    expect(() => parseWorkflowDefinition({ ...valid, actions: [{ type: 'send_sms' }] })).toThrow(/actions\.0\.type/);
    expect(() => parseWorkflowDefinition({ ...valid, trigger: { event: 'not valid' } })).toThrow(/trigger\.event: must be a dotted event name/);
  });

  it('refuses unknown fields, so a typo is not silently ignored', () => {
    expect(() => parseWorkflowDefinition({ ...valid, trigerr: {} })).toThrow(/trigerr/);
  });

  it('requires at least one action', () => {
    expect(() => parseWorkflowDefinition({ ...valid, actions: [] })).toThrow(/actions/);
  });
});
