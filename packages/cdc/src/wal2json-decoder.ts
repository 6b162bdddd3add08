import { parseLsn } from '@walflow/core';
import { randomUUID } from 'node:crypto';
import { Wal2JsonPlugin, type Wal2JsonPluginOptions } from 'pg-logical-replication';
import type { ChangeDecoder } from './change-decoder.js';
import type { ChangeMessage } from './change-message.js';
import { OUTBOX_SCHEMA, OUTBOX_TABLE } from './outbox-stream.js';
import { parseWal2JsonMessage, walTimestampToIso } from './wal2json-messages.js';

/**
 * The options of walflow's wal2json streams. No logical message passes: `add-msg-prefixes` names a prefix made
 * afresh for each stream, which nothing writes. walflow reads no message (its heartbeat is the transaction the
 * message makes, which comes through as the empty transactions of its own writes do), and any role may write
 * one: pg_logical_emit_message is PUBLIC's, and wal2json escapes a message's bytes up to six times over, so one of
 * a few hundred MB under a prefix walflow let through made a stream message no consumer can read, at every
 * reconnect, for every tenant.
 */
export function wal2jsonOptions(): Wal2JsonPluginOptions {
  return {
    formatVersion: '2',
    includeXids: true,
    includeTimestamp: true,
    includeLsn: true,
    includeTypes: false,
    addTables: `${OUTBOX_SCHEMA}.${OUTBOX_TABLE}`,
    actions: 'insert',
    addMsgPrefixes: `walflow-reads-no-message-${randomUUID()}`,
  };
}

/**
 * wal2json format-version 2 restricted to inserts into the outbox: the dispatcher's deletes and its writes to
 * walflow's other tables never reach the stream, only the empty transactions they leave.
 * (`numeric-data-types-as-string` is not used: Debian's wal2json 2.5 rejects it, and the outbox has no numeric
 * column.)
 */
export const wal2jsonDecoder: ChangeDecoder = {
  plugin: 'wal2json',
  createPlugin: () => new Wal2JsonPlugin(wal2jsonOptions()),
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
        // Not sent under walflow's options (see wal2jsonOptions): ignored should a server send one all the same.
        return { kind: 'ignored' };
      case 'U':
      case 'D':
      case 'T':
        return { kind: 'unexpected', action: message.action };
    }
  },
};
