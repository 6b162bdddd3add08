import { RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { JetStreamPublisher, sinkMessage, type SinkEvent } from '@walflow/nats-sink';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../server/test/fixtures.js';
import { startNatsServer, type TestNatsServer } from './nats-server.js';
import { streamContents, withJetStream } from './stream-contents.js';

let nats: TestNatsServer;

const EVENT: Omit<SinkEvent, 'payloadJson' | 'payloadBytes'> = {
  id: '0190a6f0-0000-7000-8000-000000000001',
  type: 'policy.approved',
  committedAt: '2026-11-29T06:00:00.000000+00:00',
  aggregateType: 'policy',
  aggregateId: 'p1',
  tenantId: 'limited',
  metadata: {},
};

beforeAll(async () => {
  nats = await startNatsServer();
});
afterAll(async () => {
  await nats?.dispose();
});

describe('a stream its operators limited to small messages', () => {
  it('is published to within its limit: an event larger goes without its data, not refused', async () => {
    const stream = 'LIMITED';
    await withJetStream(nats.url, (manager) =>
      manager.streams.add({ name: stream, subjects: ['limited.>'], storage: StorageType.Memory, retention: RetentionPolicy.Limits, max_msg_size: 8 * 1024 }),
    );
    const settings = { servers: [nats.url], subject: 'limited.{tenant}.{type}', stream, maxAgeSeconds: 3600, duplicateWindowSeconds: 600 };
    const publisher = await JetStreamPublisher.connect(settings, silentLogger);
    try {
      // Far below the server's 1 MiB, above the stream's 8 KiB.
      const payloadJson = JSON.stringify({ blob: 'x'.repeat(20 * 1024) });
      const event: SinkEvent = { ...EVENT, payloadJson, payloadBytes: payloadJson.length };
      await publisher.publishAll([sinkMessage(event, settings.subject, { maxBytes: publisher.maxMessageBytes })]);
      const [stored] = await streamContents(nats.url, stream);
      expect(stored?.cloudEvent).toMatchObject({ id: event.id, omitteddatabytes: payloadJson.length });
      expect(stored?.cloudEvent).not.toHaveProperty('data');
    } finally {
      await publisher.close();
    }
  });
});

describe('a message just under the server\'s max_payload', () => {
  it('goes without its data, leaving room for its headers: NATS counts them within max_payload, and would refuse it whole', async () => {
    const maxPayload = 64 * 1024;
    const small = await startNatsServer({ maxPayload });
    const settings = { servers: [small.url], subject: 'edge.{tenant}.{type}', stream: 'EDGE', maxAgeSeconds: 3600, duplicateWindowSeconds: 600 };
    const publisher = await JetStreamPublisher.connect(settings, silentLogger);
    try {
      const eventWith = (blob: string): SinkEvent => {
        const payloadJson = JSON.stringify({ blob });
        return { ...EVENT, payloadJson, payloadBytes: payloadJson.length };
      };
      // The whole CloudEvent 16 bytes under max_payload: its headers take it over.
      const overhead = sinkMessage(eventWith(''), settings.subject).data.length;
      const event = eventWith('x'.repeat(maxPayload - 16 - overhead));
      expect(sinkMessage(event, settings.subject).data.length).toBe(maxPayload - 16);
      await publisher.publishAll([sinkMessage(event, settings.subject, { maxBytes: publisher.maxMessageBytes })]);
      const [stored] = await streamContents(small.url, 'EDGE');
      expect(stored?.cloudEvent).toMatchObject({ id: event.id, omitteddatabytes: event.payloadBytes });
      expect(stored?.cloudEvent).not.toHaveProperty('data');
    } finally {
      await publisher.close();
      await small.dispose();
    }
  });
});
