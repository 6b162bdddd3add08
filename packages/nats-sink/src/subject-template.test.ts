import { describe, expect, it } from 'vitest';
import { streamSubjects, SUBJECT_TEMPLATE_PATTERN, subjectFor } from './subject-template.js';

const event = { tenantId: 'acme', type: 'policy.approved', aggregateType: 'policy', aggregateId: 'p-1' };

describe('subjectFor', () => {
  it('keeps the event type’s dots as tokens', () => {
    expect(subjectFor('walflow.{tenant}.{type}', event)).toBe('walflow.acme.policy.approved');
    expect(subjectFor('crm.{aggregateType}.{aggregateId}.{type}', event)).toBe('crm.policy.p-1.policy.approved');
  });

  it('encodes tenant and aggregate values into one token each, and names a missing one _', () => {
    const odd = { tenantId: 'a.b *>é', type: 'x.y', aggregateType: null, aggregateId: '' };
    expect(subjectFor('w.{tenant}.{aggregateType}.{aggregateId}.{type}', odd)).toBe('w.a%2Eb%20%2A%3E%C3%A9._._.x.y');
    expect(subjectFor('w.{tenant}', { ...event, tenantId: '100%' })).toBe('w.100%25');
    expect(subjectFor('w.{aggregateId}', { ...event, aggregateId: '_' })).toBe('w.%5F');
  });

  it('cuts a long value to 200 characters with a hash of the whole, so subjects stay short and distinct', () => {
    const long = (last: string) => subjectFor('w.{aggregateId}', { ...event, aggregateId: `${'é'.repeat(2000)}${last}` });
    const [a, b] = [long('a'), long('b')];
    expect(a.length).toBeLessThanOrEqual('w.'.length + 200);
    expect(a).toMatch(/^w\.(%[0-9A-F]{2}){50,}-[0-9a-f]{16}$/);
    expect(a).not.toBe(b);
    expect(long('a')).toBe(a);
    // A short value written as a cut one is cannot be chosen to stand for the long value.
    const lookalike = a.slice('w.'.length).replace(/%C3%A9/g, 'x');
    expect(subjectFor('w.{aggregateId}', { ...event, aggregateId: lookalike })).toMatch(/%2D[0-9a-f]{16}$/);
  });
});

describe('streamSubjects', () => {
  it('captures the literal prefix, or the template itself when it names no field', () => {
    expect(streamSubjects('walflow.{tenant}.{type}')).toEqual(['walflow.>']);
    expect(streamSubjects('org.walflow.events-{tenant}')).toEqual(['org.walflow.>']);
    expect(streamSubjects('walflow.events')).toEqual(['walflow.events']);
  });
});

describe('SUBJECT_TEMPLATE_PATTERN', () => {
  it('accepts literal-first templates of known fields only', () => {
    for (const good of ['walflow.{tenant}.{type}', 'a', 'a.b-{tenant}_x.{aggregateId}', 'org.events-{tenant}']) expect(SUBJECT_TEMPLATE_PATTERN.test(good)).toBe(true);
    // Two values in one token could make the same subject from two tenants' events.
    const mixed = ['walflow.{tenant}-{type}', 'walflow.{tenant}{aggregateId}', 'walflow.x{tenant}_{aggregateType}'];
    for (const bad of ['{tenant}.x', 'walflow.>', 'walflow.*', 'walflow..x', 'walflow.{payload}', 'wal flow', 'walflow.', ...mixed]) {
      expect(SUBJECT_TEMPLATE_PATTERN.test(bad)).toBe(false);
    }
  });
});
