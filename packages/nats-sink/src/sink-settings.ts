/** Where the sink publishes and how the stream is created; `walflow start` reads them from WALFLOW_NATS_*. */
export interface NatsSinkSettings {
  /** NATS servers (`nats://host:4222`); the client reconnects to any of them. */
  servers: string[];
  /** A subject template (see SUBJECT_TEMPLATE_PATTERN), e.g. `walflow.{tenant}.{type}`. */
  subject: string;
  /** The JetStream stream, created if missing; the sink's cursor is named after it. */
  stream: string;
  /** How long the stream keeps a message when walflow creates it; 0 keeps messages until removed otherwise. */
  maxAgeSeconds: number;
  /**
   * The stream's duplicate window when walflow creates it: a message whose Nats-Msg-Id was stored within it is
   * dropped. It must be longer than the longest time between a publish and the cursor save that follows it,
   * a crash or an outage included, or a re-published event is stored twice.
   */
  duplicateWindowSeconds: number;
}

/** The cursor of the sink that publishes to `stream`: another stream starts a sink of its own. */
export function sinkName(settings: Pick<NatsSinkSettings, 'stream'>): string {
  return `nats:${settings.stream}`;
}
