import { describe, expect, it } from 'vitest';
import { sinkMessage, type SinkEvent } from './sink-message.js';

const event: SinkEvent = {
  id: '0190a1b2-0000-7000-8000-000000000001',
  type: 'policy.approved',
  tenantId: 'acme corp',
  aggregateType: 'policy',
  aggregateId: 'p-1',
  payloadJson: '{"premium": 1200}',
  payloadBytes: 17,
  metadata: { actorId: 'u-7', correlationId: 'c-1', causationId: 'e-0', depth: 1 },
  committedAt: '2024-05-01T12:00:00.123456Z',
};

function decoded(data: Uint8Array): unknown {
  return JSON.parse(new TextDecoder().decode(data));
}

describe('sinkMessage', () => {
  it('is a structured CloudEvent named by the event id, with walflow’s extensions', () => {
    const message = sinkMessage(event, 'walflow.{tenant}.{type}');
    expect(message).toMatchObject({ eventId: event.id, msgId: `${event.id}@2024-05-01T12:00:00.123456Z`, subject: 'walflow.acme%20corp.policy.approved' });
    expect(decoded(message.data)).toEqual({
      specversion: '1.0',
      id: event.id,
      source: 'walflow/acme%20corp',
      type: 'policy.approved',
      time: '2024-05-01T12:00:00.123456Z',
      subject: 'policy/p-1',
      datacontenttype: 'application/json',
      data: { premium: 1200 },
      tenant: 'acme corp',
      actorid: 'u-7',
      correlationid: 'c-1',
      causationid: 'e-0',
    });
  });

  it('gives a replay a message id of its own and says which replay it is', () => {
    const message = sinkMessage({ ...event, metadata: {}, aggregateId: null }, 'walflow.{tenant}.{type}', { replayId: 'replay-1' });
    expect(message.msgId).toBe(`${event.id}@2024-05-01T12:00:00.123456Z:replay-1`);
    const body = decoded(message.data) as Record<string, unknown>;
    expect(body).toMatchObject({ id: event.id, replayid: 'replay-1', tenant: 'acme corp' });
    expect(body).not.toHaveProperty('subject');
    expect(body).not.toHaveProperty('actorid');
  });
});
