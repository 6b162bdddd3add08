import { parseLsn, type EventEnvelope } from '@walflow/core';
import { describe, expect, it } from 'vitest';
import { findsItsPath, renderTemplate } from './template.js';

const event: EventEnvelope = {
  id: 'e1',
  type: 'recruit.graduated_to_agent',
  tenantId: 't1',
  aggregateType: 'recruit',
  aggregateId: 'r-42',
  payload: { name: 'Ada', scores: [1, 2], nested: { level: 3 }, 'new-status': { code: 4 } },
  metadata: { actorId: 'u1' },
  committedAt: '2026-11-26T21:26:52.84801+00:00',
  commitLsn: parseLsn('0/10'),
  position: 0,
  xid: '7',
};

describe('renderTemplate', () => {
  it('replaces placeholders inside text', () => {
    expect(renderTemplate({ subject: 'Welcome {{event.payload.name}} ({{ event.aggregateId }})' }, event)).toEqual({ subject: 'Welcome Ada (r-42)' });
  });

  it('keeps the value itself when the whole string is one placeholder', () => {
    expect(renderTemplate({ level: '{{event.payload.nested.level}}', scores: '{{event.payload.scores}}' }, event)).toEqual({ level: 3, scores: [1, 2] });
  });

  it('keeps the value itself for any name Mustache finds: list elements by index, names with hyphens', () => {
    expect(renderTemplate({ second: '{{event.payload.scores.1}}', status: '{{ event.payload.new-status }}', text: 'n{{event.payload.scores.0}}' }, event)).toEqual({
      second: 2,
      status: { code: 4 },
      text: 'n1',
    });
    expect(findsItsPath('{{event.payload.scores.1}}', event)).toBe(true);
    // Missing, such a path is not found: update_field fails rather than write '' into the column.
    expect(findsItsPath('{{event.payload.old-status}}', event)).toBe(false);
    expect(findsItsPath('{{event.payload.scores.5}}', event)).toBe(false);
  });

  it('renders nested objects and arrays, leaving other values alone', () => {
    expect(renderTemplate({ to: ['{{event.metadata.actorId}}', 5, true, null], deep: { tenant: '{{event.tenantId}}' } }, event)).toEqual({
      to: ['u1', 5, true, null],
      deep: { tenant: 't1' },
    });
  });

  it('renders a missing value as empty text or null', () => {
    expect(renderTemplate({ a: 'x{{event.payload.missing}}y', b: '{{event.payload.missing}}' }, event)).toEqual({ a: 'xy', b: null });
  });

  it('renders Mustache inside text, without HTML escaping, and leaves keys and other values alone', () => {
    expect(renderTemplate({ '{{event.id}}': 'key stays', greeting: 'Hi <{{event.payload.name}}>{{#event.payload.scores}} {{.}}{{/event.payload.scores}}', flag: false }, event)).toEqual({
      '{{event.id}}': 'key stays',
      greeting: 'Hi <Ada> 1 2',
      flag: false,
    });
  });

  it('never reaches outside the event: no prototype walk, no expressions', () => {
    expect(renderTemplate({ a: '{{event.payload.constructor}}', b: '{{event.__proto__}}', c: '{{process.env.HOME}}', d: '{{event.payload.name + 1}}' }, event)).toEqual({
      a: null,
      b: null,
      c: '',
      d: '',
    });
  });
});
