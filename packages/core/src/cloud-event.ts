import type { EventEnvelope } from './event-envelope.js';

/** The fields of a recorded event a CloudEvent carries. */
export type CloudEventSource = Pick<EventEnvelope, 'id' | 'type' | 'committedAt' | 'aggregateType' | 'aggregateId' | 'payload'>;

/** Extension attribute values: CloudEvents allows only scalars, named in lower-case letters and digits. */
export type CloudEventExtensions = Record<string, string | number | boolean>;

export interface CloudEventOptions {
  /** Identifies where the event comes from (a URI reference), e.g. `walflow/<tenant>`. */
  source: string;
  /** @default the event's type */
  type?: string | undefined;
  /** @default the event's payload */
  data?: unknown;
  extensions?: CloudEventExtensions | undefined;
}

/** A CloudEvents 1.0 event in structured JSON mode (`application/cloudevents+json`). */
export interface StructuredCloudEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  /** The commit time, with the WAL's microseconds. */
  time: string;
  /** The aggregate, `type/id` (or the id alone); absent when the event names none. */
  subject?: string;
  datacontenttype: 'application/json';
  data: unknown;
  [extension: string]: unknown;
}

const EXTENSION_NAME = /^[a-z0-9]{1,20}$/;

/**
 * The CloudEvent of a recorded event: its id, commit time and aggregate as `subject`. Webhooks and the
 * JetStream sink send the same shape, so a consumer of one reads the other.
 */
export function toCloudEvent(event: CloudEventSource, options: CloudEventOptions): StructuredCloudEvent {
  const subject =
    event.aggregateId === null ? undefined : event.aggregateType === null ? event.aggregateId : `${event.aggregateType}/${event.aggregateId}`;
  for (const name of Object.keys(options.extensions ?? {})) {
    // A programming error, not bad input: extension names are chosen by walflow, never by users.
    if (!EXTENSION_NAME.test(name)) throw new Error(`CloudEvents extension names are 1-20 lower-case letters or digits: ${name}`);
  }
  return {
    ...options.extensions,
    specversion: '1.0',
    id: event.id,
    source: options.source,
    type: options.type ?? event.type,
    time: event.committedAt,
    ...(subject === undefined ? {} : { subject }),
    datacontenttype: 'application/json',
    data: options.data === undefined ? event.payload : options.data,
  };
}
