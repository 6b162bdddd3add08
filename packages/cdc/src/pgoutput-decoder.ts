import { parseLsn, WalflowError } from '@walflow/core';
import { PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import type { ChangeDecoder } from './change-decoder.js';
import type { ChangeMessage } from './change-message.js';
import { OUTBOX_PUBLICATION } from './outbox-stream.js';

const JSON_TYPE_OIDS = new Set([114, 3802]);

/**
 * pgoutput with json and jsonb columns left as the text PostgreSQL sent, as wal2json leaves them. The library
 * parses column text with node-postgres's type parsers, and JSON.parse loses what JavaScript cannot hold: an
 * integer of 10^21 or more would come back from JSON.stringify with an exponent, one beyond a double as null,
 * and the payload would be recorded changed instead of parked. Each relation message names its columns' parsers,
 * and the library parses the inserts after it with them, in the same turn: they are replaced as it arrives.
 */
class PgoutputWithJsonText extends PgoutputPlugin {
  override parse(buffer: Buffer): Pgoutput.Message {
    const message = super.parse(buffer);
    if (message.tag === 'relation') {
      for (const column of message.columns) if (JSON_TYPE_OIDS.has(column.typeOid)) column.parser = asSent;
    }
    return message;
  }
}

const asSent = (text: string): string => text;

/**
 * PostgreSQL's built-in plugin, for servers without wal2json (managed services, embedded PostgreSQL). The
 * publication limits the stream to outbox inserts; `messages` lets heartbeats through. pgoutput leaves empty
 * transactions out entirely, so idle periods are confirmed through keepalives alone.
 */
export const pgoutputDecoder: ChangeDecoder = {
  plugin: 'pgoutput',
  createPlugin: () => new PgoutputWithJsonText({ protoVersion: 1, publicationNames: [OUTBOX_PUBLICATION], messages: true }),
  decode(raw: unknown): ChangeMessage {
    const message = raw as Pgoutput.Message;
    switch (message.tag) {
      case 'begin':
        // The library reads the xid as a signed 32-bit integer: half of all ids would come out negative.
        return { kind: 'begin', xid: String(message.xid >>> 0), commitLsn: parseLsn(requireLsn(message.commitLsn, 'begin')), committedAt: unixMicrosToIso(message.commitTime as bigint) };
      case 'insert':
        return { kind: 'insert', schema: message.relation.schema, table: message.relation.name, row: { ...message.new } };
      case 'commit':
        return { kind: 'commit', xid: null, endLsn: parseLsn(requireLsn(message.commitEndLsn, 'commit')) };
      case 'message':
      case 'relation':
      case 'type':
      case 'origin':
        return { kind: 'ignored' };
      case 'update':
      case 'delete':
      case 'truncate':
        return { kind: 'unexpected', action: message.tag };
      default:
        throw new WalflowError('message_invalid', `unexpected pgoutput message ${JSON.stringify((raw as { tag?: unknown }).tag)}`);
    }
  },
};

function requireLsn(lsn: string | null, where: string): string {
  if (lsn === null) throw new WalflowError('message_invalid', `pgoutput ${where} message without an LSN`);
  return lsn;
}

/** pg-logical-replication gives commit times as microseconds since the Unix epoch; this keeps the microseconds. */
export function unixMicrosToIso(micros: bigint): string {
  const seconds = micros / 1_000_000n;
  const fraction = (micros % 1_000_000n).toString().padStart(6, '0');
  return `${new Date(Number(seconds) * 1000).toISOString().slice(0, 19)}.${fraction}+00:00`;
}
