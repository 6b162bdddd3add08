import { describe, expect, it } from 'vitest';
import { parseWorkflowDefinition } from './workflow-definition.js';
import { validateWorkflow } from './workflow-store.js';

const valid = {
  tenant: 't1',
  name: 'welcome-agent',
  status: 'active',
  trigger: { event: 'recruit.graduated_to_agent' },
  actions: [{ type: 'emit_event', event: 'agent.onboarding_started', payload: { recruitId: '{{event.aggregateId}}' } }],
};

describe('parseWorkflowDefinition', () => {
  it('accepts the documented format and fills defaults', () => {
    expect(parseWorkflowDefinition(valid)).toEqual({
      ...valid,
      rateLimits: [],
      ordering: 'aggregate',
      retry: { maxAttempts: 5 },
      autoPause: { afterConsecutiveFailures: 5 },
    });
    expect(parseWorkflowDefinition({ name: 'n', trigger: { event: 'a.b' }, actions: [{ type: 'emit_event', event: 'c.d' }] })).toMatchObject({
      tenant: 'default',
      status: 'active',
      actions: [{ payload: {} }],
    });
  });

  it('names each offending field', () => {
    expect(() => parseWorkflowDefinition({ ...valid, status: 'on', actions: [{ type: 'emit_event' }] })).toThrow(/status: .*; actions\.0\.event/);
    expect(() => parseWorkflowDefinition({ ...valid, actions: [{ type: 'send_sms' }] })).toThrow(/actions\.0\.type/);
    expect(() => parseWorkflowDefinition({ ...valid, trigger: { event: 'not valid' } })).toThrow(/trigger\.event: must be an event type, a prefix such as policy\.\*, or \*/);
  });

  it('refuses a webhook URL whose scheme or credentials the workflow writes wrongly itself, at apply rather than at every run', () => {
    const webhook = (url: string) => parseWorkflowDefinition({ ...valid, actions: [{ type: 'webhook', url }] });
    expect(() => webhook('ftp://files.example.com/drop')).toThrow(/actions\.0\.url: webhook URL must use http or https, not ftp/);
    expect(() => webhook('https://user:pass@hooks.example.com/{{event.id}}')).toThrow(/actions\.0\.url: webhook URL must not contain credentials/);
    expect(() => webhook('https://hooks example.com/x')).toThrow(/actions\.0\.url: webhook URL is not a valid URL/);
    // What an event's values make is checked when the run renders it.
    expect(webhook('{{{event.payload.url}}}').actions).toHaveLength(1);
    expect(webhook('https://hooks.example.com/{{event.id}}').actions).toHaveLength(1);
  });

  it('refuses, when applied, a template name the root is looked up for that is no field of the event, which would render as nothing', () => {
    const document = (title: string) => ({ ...valid, actions: [{ type: 'create_notification', recipient: 'ops', title }] });
    const noted = (title: string) => validateWorkflow(document(title));
    expect(() => noted('Welcome {{payload.name}}')).toThrow(/actions\.0\.title: template names payload\.name, which is no field of the event: names start with one of event\.id, event\.type/);
    expect(() => noted('{{event.aggregateid}}')).toThrow(/template names event\.aggregateid/);
    // An inverted section looks names up where it stands.
    expect(() => noted('{{^event.metadata.actorId}}{{payload.name}}{{/event.metadata.actorId}}')).toThrow(/template names payload\.name/);
    expect(() => validateWorkflow({ ...valid, actions: [{ type: 'emit_event', event: 'a.b', payload: { to: ['{{{recipient}}}'] } }] })).toThrow(/actions\.0\.payload\.to\.0: template names recipient/);
    // Inside a section a name may be one of the section's value; `.` is the whole view.
    expect(noted('{{#event.payload.agents}}{{email}} {{/event.payload.agents}}{{^event.metadata.actorId}}system{{/event.metadata.actorId}}{{.}}').actions).toHaveLength(1);
    // A stored workflow is read as it was accepted, before this check came.
    expect(parseWorkflowDefinition(document('Welcome {{payload.name}}')).actions).toHaveLength(1);
  });

  it('refuses unknown fields, so a typo is not silently ignored', () => {
    expect(() => parseWorkflowDefinition({ ...valid, trigerr: {} })).toThrow(/trigerr/);
  });

  it('accepts wildcard triggers and the engine fields', () => {
    expect(
      parseWorkflowDefinition({
        ...valid,
        trigger: { event: 'policy.*' },
        condition: 'event.payload.premium > 1000.0',
        bypass: "event.metadata.priority == 'critical'",
        cooldown: { seconds: 600, key: 'event.aggregateId' },
        rateLimits: [{ limit: 3, periodSeconds: 3600, key: 'event.metadata.actorId' }],
        ordering: 'none',
      }),
    ).toMatchObject({ trigger: { event: 'policy.*' }, cooldown: { seconds: 600 }, ordering: 'none' });
    expect(parseWorkflowDefinition({ ...valid, trigger: { event: '*' } }).trigger.event).toBe('*');
    expect(() => parseWorkflowDefinition({ ...valid, trigger: { event: 'policy*' } })).toThrow(/trigger\.event/);
    // A rate-limit window counts in an integer column.
    expect(() => parseWorkflowDefinition({ ...valid, rateLimits: [{ limit: 2 ** 31, periodSeconds: 60 }] })).toThrow(/rateLimits\.0\.limit/);
  });

  it('checks update_field and names a missing value', () => {
    const update = { type: 'update_field', table: 'crm.agents', key: { column: 'id', value: '{{event.aggregateId}}' }, column: 'lifetime_commission' };
    expect(() => parseWorkflowDefinition({ ...valid, actions: [update] })).toThrow(/set exactly one of value or increment/);
    expect(() => parseWorkflowDefinition({ ...valid, actions: [{ ...update, table: 'agents; drop' }] })).toThrow(/actions\.0\.table/);
    expect(parseWorkflowDefinition({ ...valid, actions: [{ ...update, increment: '{{event.payload.amount}}' }] }).actions[0]).toMatchObject({ type: 'update_field' });
  });

  it('checks every template of emit_event, create_notification and update_field when it is applied, naming where', () => {
    const refused = (action: Record<string, unknown>, where: RegExp) => expect(() => parseWorkflowDefinition({ ...valid, actions: [action] })).toThrow(where);
    const emitEvent = { type: 'emit_event', event: 'a.b' };
    refused({ ...emitEvent, payload: { items: ['ok', '{{#event.payload.items}}'] } }, /actions\.0\.payload\.items\.1: template is malformed/);
    refused({ ...emitEvent, aggregateId: '{{event.aggregateId' }, /actions\.0\.aggregateId: template is malformed/);
    refused({ ...emitEvent, aggregateType: '{{> partial}}' }, /actions\.0\.aggregateType: template partials/);
    const notification = { type: 'create_notification', recipient: 'ops', title: 'Hi' };
    refused({ ...notification, title: 'Hi {{#event.payload.items}}' }, /actions\.0\.title: template is malformed/);
    refused({ ...notification, recipient: '{{event.payload.owner' }, /actions\.0\.recipient: template is malformed/);
    refused({ ...notification, body: '{{> p}}' }, /actions\.0\.body: template partials/);
    refused({ ...notification, data: { nested: { deep: '{{/closes}}' } } }, /actions\.0\.data\.nested\.deep: template is malformed/);
    const update = { type: 'update_field', table: 'crm.agents', key: { column: 'id', value: '{{event.aggregateId}}' }, column: 'stage' };
    refused({ ...update, key: { column: 'id', value: '{{event.aggregateId' }, value: 1 }, /actions\.0\.key\.value/);
    refused({ ...update, value: { label: '{{#open}}' } }, /actions\.0\.value\.label: template is malformed/);
    refused({ ...update, increment: '{{event.payload.amount' }, /actions\.0\.increment/);
    // What renders stays accepted, numbers and nulls as they are.
    expect(parseWorkflowDefinition({ ...valid, actions: [{ ...update, value: null }, { ...update, key: { column: 'id', value: 7 }, increment: 2 }] }).actions).toHaveLength(2);
  });

  it('accepts a concurrency limit with an optional key, and refuses a limit below 1', () => {
    expect(parseWorkflowDefinition({ ...valid, concurrency: { limit: 2, key: 'event.aggregateId' } }).concurrency).toEqual({ limit: 2, key: 'event.aggregateId' });
    expect(parseWorkflowDefinition({ ...valid, concurrency: { limit: 1 } }).concurrency).toEqual({ limit: 1 });
    expect(() => parseWorkflowDefinition({ ...valid, concurrency: { limit: 0 } })).toThrow(/concurrency\.limit/);
    expect(() => parseWorkflowDefinition({ ...valid, concurrency: { limit: 2, keys: 'x' } })).toThrow(/concurrency/);
  });

  it("refuses to emit an event walflow's runs emit about themselves", () => {
    for (const event of ['email.sent', 'email.failed', 'workflow.auto_paused']) {
      expect(() => parseWorkflowDefinition({ ...valid, actions: [{ type: 'emit_event', event }] }), event).toThrow(/actions\.0\.event.*walflow's runs emit about themselves/);
    }
  });

  it('requires at least one action', () => {
    expect(() => parseWorkflowDefinition({ ...valid, actions: [] })).toThrow(/actions/);
  });
});

describe('the bounds of a definition', () => {
  // Each beyond its bound would fail downstream instead: an attempt count or a cooldown PostgreSQL cannot hold parks
  // every matching event, for all its workflows.
  const bounds: [string, (n: number) => Record<string, unknown>, number, RegExp][] = [
    ['retry.maxAttempts', (n) => ({ retry: { maxAttempts: n } }), 100, /retry\.maxAttempts/],
    ['cooldown.seconds', (n) => ({ cooldown: { seconds: n } }), 31_536_000, /cooldown\.seconds/],
    ['rateLimits.0.periodSeconds', (n) => ({ rateLimits: [{ limit: 1, periodSeconds: n }] }), 31_536_000, /rateLimits\.0\.periodSeconds/],
    ['rateLimits', (n) => ({ rateLimits: Array.from({ length: n }, () => ({ limit: 1, periodSeconds: 60 })) }), 5, /rateLimits/],
    ['concurrency.limit', (n) => ({ concurrency: { limit: n } }), 10_000, /concurrency\.limit/],
    ['autoPause.afterConsecutiveFailures', (n) => ({ autoPause: { afterConsecutiveFailures: n } }), 1000, /autoPause\.afterConsecutiveFailures/],
    ['actions', (n) => ({ actions: Array.from({ length: n }, () => ({ type: 'emit_event', event: 'a.b' })) }), 20, /actions/],
    ['tenant', (n) => ({ tenant: 't'.repeat(n) }), 200, /tenant/],
    ['name', (n) => ({ name: 'n'.repeat(n) }), 200, /name/],
  ];

  it('accepts each at its bound and refuses it one beyond, naming the field', () => {
    for (const [field, shaped, bound, named] of bounds) {
      expect(() => parseWorkflowDefinition({ ...valid, ...shaped(bound) }), field).not.toThrow();
      expect(() => parseWorkflowDefinition({ ...valid, ...shaped(bound + 1) }), field).toThrow(named);
    }
  });
});

describe('a workflow that writes a field the operator allows only within the event’s tenant', () => {
  const credit = (tenantColumn?: string) => ({
    ...valid,
    actions: [{ type: 'update_field', table: 'public.accounts', column: 'balance', key: { column: 'id', value: '{{event.payload.account}}' }, increment: 1, ...(tenantColumn === undefined ? {} : { tenantColumn }) }],
  });
  const scoped = { updateFields: ['public.accounts.balance@tenant_id'] };

  it('must scope its update by that very column: any other matches another tenant’s rows as well', () => {
    for (const column of [undefined, 'id', 'owner_id']) {
      expect(() => validateWorkflow(credit(column), scoped), String(column)).toThrow(/may write public\.accounts\.balance only within the event's tenant: add "tenantColumn": "tenant_id"/);
    }
    expect(validateWorkflow(credit('tenant_id'), scoped).actions).toHaveLength(1);
  });
});

describe('conditions and bypasses', () => {
  it('are refused at apply, with the place, unless they give true or false; a guard key may give any value', () => {
    expect(() => validateWorkflow({ ...valid, bypass: 'event.type' })).toThrow(/bypass: .*true or false.*line 1, column 1/);
    expect(() => validateWorkflow({ ...valid, condition: '1 + 1' })).toThrow(/condition: .*true or false.*line 1, column 1/);
    expect(validateWorkflow({ ...valid, cooldown: { seconds: 60, key: 'event.type' } }).cooldown).toEqual({ seconds: 60, key: 'event.type' });
  });
});
