export { emit, emitCaused, emitMany, type EmitWithMetadata } from './emit.js';
export { identifierProblem } from './event-identifiers.js';
export type { OutboxWriter, PgQueryable } from './outbox-writer.js';
export { createOutbox, type AnyTypedEvent, type TypedEvent, type TypedOutbox } from './typed-outbox.js';
