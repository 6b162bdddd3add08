export * from './backoff.js';
export * from './catalog.js';
export * from './dispatch.js';
export * from './errors.js';
export * from './event-envelope.js';
export * from './identifiers.js';
export * from './lsn.js';
export * from './sqlstate.js';
export type * from './tables.js';
