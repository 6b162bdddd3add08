import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

/** One stored message, as a consumer of the stream sees it. */
export interface StoredEvent {
  seq: number;
  subject: string;
  msgId: string;
  contentType: string;
  cloudEvent: Record<string, unknown> & { id: string; time: string };
  /** The message as JSON text, digits beyond what a double holds kept. */
  text: string;
}

/** Runs `read` with a JetStream manager on its own connection, closed afterwards. */
export async function withJetStream<T>(url: string, read: (manager: JetStreamManager) => Promise<T>): Promise<T> {
  const connection = await connect({ servers: url });
  try {
    return await read(await jetstreamManager(connection));
  } finally {
    await connection.close();
  }
}

/** How many messages the stream holds; 0 while it does not exist. */
export async function streamSize(url: string, stream: string): Promise<number> {
  return withJetStream(url, async (manager) => {
    const names: string[] = [];
    for await (const name of manager.streams.names()) names.push(name);
    return names.includes(stream) ? (await manager.streams.info(stream)).state.messages : 0;
  });
}

/** Every message of the stream, in stream order. */
export async function streamContents(url: string, stream: string): Promise<StoredEvent[]> {
  return withJetStream(url, async (manager) => {
    const { state } = await manager.streams.info(stream);
    const stored: StoredEvent[] = [];
    for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
      const message = await manager.streams.getMessage(stream, { seq });
      if (message === null) continue;
      const text = new TextDecoder().decode(message.data);
      stored.push({
        seq: message.seq,
        subject: message.subject,
        msgId: message.header.get('Nats-Msg-Id'),
        contentType: message.header.get('Content-Type'),
        cloudEvent: JSON.parse(text) as StoredEvent['cloudEvent'],
        text,
      });
    }
    return stored;
  });
}
