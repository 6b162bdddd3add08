import { toCloudEvent, type CloudEventExtensions, type CloudEventSource, type EventEnvelope } from '@walflow/core';
import { subjectFor } from './subject-template.js';

/**
 * A recorded event as the sink publishes it. Its payload travels as JSON text, so that it is published exactly as
 * the log holds it (a decimal of more digits than a double keeps them), and is never parsed only to be written again.
 */
export interface SinkEvent extends Omit<CloudEventSource, 'payload'>, Pick<EventEnvelope, 'tenantId' | 'metadata'> {
  /** The payload's JSON; null when it stayed in the log, being larger than a message may be. */
  payloadJson: string | null;
  /** The payload's JSON in bytes of UTF-8. */
  payloadBytes: number;
}

/** One JetStream message: a CloudEvent in structured JSON mode. */
export interface SinkMessage {
  eventId: string;
  subject: string;
  /**
   * Nats-Msg-Id, so JetStream drops a re-publication: `<event id>@<commit time>`, since an id may be used again
   * once its event is recorded (a second event, which the bare id would have had JetStream drop), and an event
   * is keyed by both; `<event id>@<commit time>:<replay id>` for a replay.
   */
  msgId: string;
  data: Uint8Array;
}

const encoder = new TextEncoder();

/**
 * The event's CloudEvent (id = event id, time = commit time, subject = aggregate, data = payload) with
 * walflow's extensions: `tenant`, the causal chain (`correlationid`, `causationid`), `actorid`, and on a
 * replay `replayid`. One larger than `maxBytes` (what the NATS server takes) goes without its data, saying how
 * large it was (`omitteddatabytes`): NATS refuses the whole message, and the sink, which publishes in order and
 * skips nothing, would stop at it for every tenant. The event stays in walflow's log.
 */
export function sinkMessage(event: SinkEvent, subjectTemplate: string, options: { replayId?: string | undefined; maxBytes?: number | undefined } = {}): SinkMessage {
  const { replayId, maxBytes = Number.POSITIVE_INFINITY } = options;
  // The data is written below, from the payload's text; the builder's own is left out.
  const { data: _, ...attributes } = toCloudEvent({ ...event, payload: {} }, { source: `walflow/${encodeURIComponent(event.tenantId)}`, extensions: extensionsOf(event, replayId) });
  let data: Uint8Array | undefined;
  if (event.payloadJson !== null) {
    // `data` goes last, as the payload's own text: the attributes' JSON ends with its closing brace.
    const withoutData = JSON.stringify(attributes);
    data = encoder.encode(`${withoutData.slice(0, -1)},"data":${event.payloadJson}}`);
  }
  if (data === undefined || data.length > maxBytes) {
    const { datacontenttype: __, ...withoutContentType } = attributes;
    data = encoder.encode(JSON.stringify({ ...withoutContentType, omitteddatabytes: event.payloadBytes }));
    // Still too large: its metadata's extensions (an actor id may be as long as metadata may be) go too. What is
    // left is bounded by the outbox's limits on a tenant, a type and an aggregate.
    if (data.length > maxBytes) {
      const { specversion, id, source, type, time, subject, tenant } = attributes;
      data = encoder.encode(JSON.stringify({ specversion, id, source, type, time, subject, tenant, omitteddatabytes: event.payloadBytes, omittedextensions: true }));
    }
  }
  return {
    eventId: event.id,
    subject: subjectFor(subjectTemplate, event),
    msgId: replayId === undefined ? `${event.id}@${event.committedAt}` : `${event.id}@${event.committedAt}:${replayId}`,
    data,
  };
}

function extensionsOf(event: SinkEvent, replayId: string | undefined): CloudEventExtensions {
  const extensions: CloudEventExtensions = { tenant: event.tenantId };
  const { actorId, correlationId, causationId } = event.metadata;
  if (typeof actorId === 'string') extensions.actorid = actorId;
  if (typeof correlationId === 'string') extensions.correlationid = correlationId;
  if (typeof causationId === 'string') extensions.causationid = causationId;
  if (replayId !== undefined) extensions.replayid = replayId;
  return extensions;
}
