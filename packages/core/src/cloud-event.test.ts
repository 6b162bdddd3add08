import { describe, expect, it } from 'vitest';
import { toCloudEvent } from './cloud-event.js';

const event = {
  id: '0190a1b2-0000-7000-8000-000000000001',
  type: 'policy.approved',
  committedAt: '2024-05-01T12:00:00.123456+00:00',
  aggregateType: 'policy',
  aggregateId: 'p-1',
  payload: { premium: 1200 },
};

describe('toCloudEvent', () => {
  it('names the event by its id, its commit time and its aggregate', () => {
    expect(toCloudEvent(event, { source: 'walflow/acme' })).toEqual({
      specversion: '1.0',
      id: event.id,
      source: 'walflow/acme',
      type: 'policy.approved',
      time: event.committedAt,
      subject: 'policy/p-1',
      datacontenttype: 'application/json',
      data: { premium: 1200 },
    });
    expect(toCloudEvent({ ...event, aggregateType: null }, { source: 's' }).subject).toBe('p-1');
    expect(toCloudEvent({ ...event, aggregateId: null }, { source: 's' })).not.toHaveProperty('subject');
  });

  it('takes another type and data, and extensions that cannot replace a standard attribute', () => {
    const cloudEvent = toCloudEvent(event, { source: 's', type: 'com.example.x', data: { a: 1 }, extensions: { tenant: 'acme', id: 'forged' } });
    expect(cloudEvent).toMatchObject({ id: event.id, type: 'com.example.x', data: { a: 1 }, tenant: 'acme' });
    expect(() => toCloudEvent(event, { source: 's', extensions: { 'Bad-Name': 'x' } })).toThrow(/extension names/);
  });
});
