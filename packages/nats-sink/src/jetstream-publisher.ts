import { DiscardPolicy, jetstream, JetStreamApiCodes, JetStreamApiError, jetstreamManager, RetentionPolicy, StorageType, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { WalflowError } from '@walflow/core';
import type { Logger } from 'pino';
import type { SinkMessage } from './sink-message.js';
import type { NatsSinkSettings } from './sink-settings.js';
import { streamSubjects } from './subject-template.js';

/** The server's answer when `Nats-Expected-Last-Msg-Id` does not name the stream's last message. */
const WRONG_LAST_MSG_ID = 10070;
const NANOS_PER_SECOND = 1_000_000_000;
/** How long one publish waits for JetStream's acknowledgement. */
const PUBLISH_TIMEOUT_MS = 5000;
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** Room left for a message's headers (Nats-Msg-Id, the expected last id, the content type) within max_payload. */
const HEADER_ALLOWANCE = 4096;

export interface PublishOutcome {
  /** Messages JetStream acknowledged, from the first: always a prefix of what was handed in. */
  stored: number;
  /** Of those, the ones JetStream had already (dropped by Nats-Msg-Id). */
  duplicates: number;
  /** Why the message after the stored prefix was not acknowledged. */
  failure?: {
    error: WalflowError;
    /** Another publisher's message came in between: not an outage, the rest is simply published again. */
    interrupted: boolean;
  };
}

/**
 * One NATS connection publishing to one stream, created if missing. Messages are stored in the order given:
 * every message but the first of a call expects its predecessor to be the stream's last message
 * (`Nats-Expected-Last-Msg-Id`), so when one is lost in an outage none after it is stored, and the
 * acknowledged messages are always a prefix that a cursor can move past.
 */
export class JetStreamPublisher {
  private disconnectedSince: Date | null = null;

  private constructor(
    private readonly connection: NatsConnection,
    private readonly client: JetStreamClient,
    readonly settings: NatsSinkSettings,
    /** The stream's own limit on a message (`max_msg_size`), when its operators set one. */
    private readonly streamMaxMessageBytes: number | null,
  ) {
    // The status stream ends when the connection closes; it has nothing to report beyond that.
    this.watchConnection().catch(() => undefined);
  }

  static async connect(settings: NatsSinkSettings, logger: Logger): Promise<JetStreamPublisher> {
    let connection: NatsConnection;
    try {
      // Once connected, the client reconnects for ever; publishes fail (and are retried) meanwhile.
      connection = await connect({ servers: settings.servers, name: 'walflow-sink', maxReconnectAttempts: -1, reconnectTimeWait: 1000 });
    } catch (error) {
      throw WalflowError.from(error, 'sink_failed', `cannot connect to NATS at ${settings.servers.map(withoutCredentials).join(', ')}`);
    }
    let streamMaxMessageBytes: number | null;
    try {
      streamMaxMessageBytes = await ensureStream(await jetstreamManager(connection), settings, logger);
    } catch (error) {
      await connection.close().catch(() => undefined);
      throw WalflowError.from(error, 'sink_failed', `cannot use JetStream stream ${settings.stream}`);
    }
    return new JetStreamPublisher(connection, jetstream(connection, { timeout: PUBLISH_TIMEOUT_MS }), settings, streamMaxMessageBytes);
  }

  /**
   * The largest message body this server and stream take, less room for the headers (NATS counts both): the
   * server's `max_payload` (1 MiB by default), or the stream's `max_msg_size` when that is smaller. A message
   * either refuses would stop the sink at its event, for every tenant.
   */
  get maxMessageBytes(): number {
    const serverLimit = this.connection.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
    return Math.min(serverLimit, this.streamMaxMessageBytes ?? serverLimit) - HEADER_ALLOWANCE;
  }

  /** Why this connection cannot publish now (closed, or reconnecting since when), or null while it can. */
  get unavailable(): string | null {
    if (this.connection.isClosed()) return 'the NATS connection is closed';
    if (this.disconnectedSince !== null) return `disconnected from NATS since ${this.disconnectedSince.toISOString()}; reconnecting`;
    return null;
  }

  /** Publishes in order and reports how far JetStream acknowledged; never throws. */
  async publish(messages: SinkMessage[]): Promise<PublishOutcome> {
    const acks = messages.map((message, index) => {
      const previous = messages[index - 1];
      const messageHeaders = headers();
      messageHeaders.set('Content-Type', 'application/cloudevents+json');
      return this.client.publish(message.subject, message.data, {
        msgID: message.msgId,
        headers: messageHeaders,
        ...(previous === undefined ? {} : { expect: { lastMsgID: previous.msgId } }),
      });
    });
    const results = await Promise.allSettled(acks);
    let duplicates = 0;
    for (const [index, result] of results.entries()) {
      if (result.status === 'rejected') {
        const message = messages[index]!;
        const reason: unknown = result.reason;
        const interrupted = reason instanceof JetStreamApiError && reason.code === WRONG_LAST_MSG_ID;
        const error = WalflowError.from(reason, 'sink_failed', `publishing event ${message.eventId} to ${message.subject} in stream ${this.settings.stream} failed`);
        return { stored: index, duplicates, failure: { error, interrupted } };
      }
      if (result.value.duplicate) duplicates++;
    }
    return { stored: messages.length, duplicates };
  }

  /** Publishes every message in order, or throws: an interruption by another publisher only makes it go on from there. */
  async publishAll(messages: SinkMessage[]): Promise<{ stored: number; duplicates: number }> {
    let rest = messages;
    let duplicates = 0;
    while (rest.length > 0) {
      const outcome = await this.publish(rest);
      duplicates += outcome.duplicates;
      if (outcome.failure !== undefined && !outcome.failure.interrupted) throw outcome.failure.error;
      rest = rest.slice(outcome.stored);
    }
    return { stored: messages.length, duplicates };
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => undefined);
  }

  private async watchConnection(): Promise<void> {
    for await (const status of this.connection.status()) {
      if (status.type === 'disconnect') this.disconnectedSince ??= new Date();
      else if (status.type === 'reconnect') this.disconnectedSince = null;
    }
  }
}

/**
 * Creates the stream when it is missing; an existing stream is left as its operators configured it. Returns the
 * stream's limit on a message, or null when it has none (as a stream walflow creates).
 */
async function ensureStream(manager: JetStreamManager, settings: NatsSinkSettings, logger: Logger): Promise<number | null> {
  const subjects = streamSubjects(settings.subject);
  try {
    const { config } = await manager.streams.info(settings.stream);
    const missing = subjects.filter((subject) => !config.subjects?.includes(subject));
    if (missing.length > 0) {
      logger.warn({ stream: settings.stream, subjects: config.subjects, missing }, 'the JetStream stream does not list the subjects walflow publishes to; publishes fail unless it captures them');
    }
    if (config.duplicate_window < settings.duplicateWindowSeconds * NANOS_PER_SECOND) {
      logger.warn(
        { stream: settings.stream, duplicateWindowSeconds: config.duplicate_window / NANOS_PER_SECOND, configured: settings.duplicateWindowSeconds },
        'the JetStream stream has a shorter duplicate window than configured; walflow does not change an existing stream',
      );
    }
    return config.max_msg_size > 0 ? config.max_msg_size : null;
  } catch (error) {
    if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)) throw error;
  }
  await manager.streams.add({
    name: settings.stream,
    subjects,
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: settings.maxAgeSeconds * NANOS_PER_SECOND,
    duplicate_window: settings.duplicateWindowSeconds * NANOS_PER_SECOND,
  });
  logger.info({ stream: settings.stream, subjects, maxAgeSeconds: settings.maxAgeSeconds, duplicateWindowSeconds: settings.duplicateWindowSeconds }, 'created the JetStream stream');
  return null;
}

/** Server URLs may carry a user and password; messages and logs must not. */
function withoutCredentials(server: string): string {
  return server.replace(/^([a-z]+:\/\/)?[^@/]*@/, '$1');
}
