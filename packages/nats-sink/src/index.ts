export { JetStreamPublisher, type PublishOutcome } from './jetstream-publisher.js';
export { NatsSink, type NatsSinkOptions, type SinkState, type SinkStatus } from './nats-sink.js';
export { measureSinkLag, PENDING_COUNT_LIMIT, type SinkLag } from './sink-lag.js';
export { DEFAULT_PAGE_BYTES, pageOf, type PagedEvent, type PageLimits } from './sized-page.js';
export { sinkMessage, type SinkEvent, type SinkMessage } from './sink-message.js';
export { sinkName, type NatsSinkSettings } from './sink-settings.js';
export { streamSubjects, SUBJECT_TEMPLATE_PATTERN, subjectFor, type SubjectFields } from './subject-template.js';
