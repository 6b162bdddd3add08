import { Wal2JsonPlugin } from 'pg-logical-replication';

export const OUTBOX_SCHEMA = 'walflow';
export const OUTBOX_TABLE = 'outbox';
/** Prefix of walflow's own logical messages (heartbeats); every other prefix is filtered in the plugin. */
export const MESSAGE_PREFIX = 'walflow';

/**
 * wal2json format-version 2 restricted to inserts into the outbox: the dispatcher's deletes and its writes to
 * walflow's other tables never reach the stream, only the empty transactions they leave.
 * (`numeric-data-types-as-string` is not used: Debian's wal2json 2.5 rejects it, and the outbox has no numeric
 * column.)
 */
export function createWal2JsonPlugin(): Wal2JsonPlugin {
  return new Wal2JsonPlugin({
    formatVersion: '2',
    includeXids: true,
    includeTimestamp: true,
    includeLsn: true,
    includeTypes: false,
    addTables: `${OUTBOX_SCHEMA}.${OUTBOX_TABLE}`,
    actions: 'insert',
    addMsgPrefixes: MESSAGE_PREFIX,
  });
}
