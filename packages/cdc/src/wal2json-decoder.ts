import { parseLsn } from '@walflow/core';
import { Wal2JsonPlugin } from 'pg-logical-replication';
import type { ChangeDecoder } from './change-decoder.js';
import type { ChangeMessage } from './change-message.js';
import { MESSAGE_PREFIX, OUTBOX_SCHEMA, OUTBOX_TABLE } from './outbox-stream.js';
import { parseWal2JsonMessage, walTimestampToIso } from './wal2json-messages.js';

/**
 * wal2json format-version 2 restricted to inserts into the outbox: the dispatcher's deletes and its writes to
 * walflow's other tables never reach the stream, only the empty transactions they leave.
 * (`numeric-data-types-as-string` is not used: Debian's wal2json 2.5 rejects it, and the outbox has no numeric
 * column.)
 */
export const wal2jsonDecoder: ChangeDecoder = {
  plugin: 'wal2json',
  createPlugin: () =>
    new Wal2JsonPlugin({
      formatVersion: '2',
      includeXids: true,
      includeTimestamp: true,
      includeLsn: true,
      includeTypes: false,
      addTables: `${OUTBOX_SCHEMA}.${OUTBOX_TABLE}`,
      actions: 'insert',
      addMsgPrefixes: MESSAGE_PREFIX,
    }),
  decode(raw: unknown): ChangeMessage {
    const message = parseWal2JsonMessage(raw);
    switch (message.action) {
      case 'B':
        return { kind: 'begin', xid: String(message.xid), commitLsn: parseLsn(message.lsn), committedAt: walTimestampToIso(message.timestamp) };
      case 'I':
        return { kind: 'insert', schema: message.schema, table: message.table, row: Object.fromEntries(message.columns.map((column) => [column.name, column.value])) };
      case 'C':
        return { kind: 'commit', xid: String(message.xid), endLsn: parseLsn(message.nextlsn) };
      case 'M':
        return { kind: 'ignored' };
      case 'U':
      case 'D':
      case 'T':
        return { kind: 'unexpected', action: message.action };
    }
  },
};
