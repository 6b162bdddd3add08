import { RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { JetStreamPublisher, sinkMessage, type SinkEvent } from '@walflow/nats-sink';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../server/test/fixtures.js';
import { startNatsServer, type TestNatsServer } from './nats-server.js';
import { streamContents, withJetStream } from './stream-contents.js';

let nats: TestNatsServer;

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
      const payloadJson = JSON.stringify({ blob: 'x'.repeat(20 * 1024) });
      const event: SinkEvent = {
        id: '0190a6f0-0000-7000-8000-000000000001',
        type: 'policy.approved',
        committedAt: '2026-11-29T06:00:00.000000+00:00',
        aggregateType: 'policy',
        aggregateId: 'p1',
        tenantId: 'limited',
        metadata: {},
        // Far below the server's 1 MiB, above the stream's 8 KiB.
        payloadJson,
        payloadBytes: payloadJson.length,
      };
      await publisher.publishAll([sinkMessage(event, settings.subject, { maxBytes: publisher.maxMessageBytes })]);
      const [stored] = await streamContents(nats.url, stream);
      expect(stored?.cloudEvent).toMatchObject({ id: event.id, omitteddatabytes: payloadJson.length });
      expect(stored?.cloudEvent).not.toHaveProperty('data');
    } finally {
      await publisher.close();
    }
  });
});
