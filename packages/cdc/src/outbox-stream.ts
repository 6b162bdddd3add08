/** The one table walflow streams: every decoder is restricted to inserts into it. */
export const OUTBOX_SCHEMA = 'walflow';
export const OUTBOX_TABLE = 'outbox';
/** Prefix of walflow's own logical messages (heartbeats). */
export const MESSAGE_PREFIX = 'walflow';
/**
 * The publication pgoutput reads: inserts into the outbox only, so the dispatcher's deletes and its writes to
 * walflow's other tables never reach the stream. Created empty before any pgoutput slot (see migrate), because
 * pgoutput fails on changes decoded from before its publication existed.
 */
export const OUTBOX_PUBLICATION = 'walflow_outbox';
