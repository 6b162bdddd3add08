export { createOutbox, emit, emitCaused, emitMany, type EmitWithMetadata, type OutboxWriter, type PgQueryable, type TypedEvent, type TypedOutbox } from './emit.js';
