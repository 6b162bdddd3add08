import { parseLsn } from '@walflow/core';
import { describe, expect, it } from 'vitest';
import { pgoutputDecoder, unixMicrosToIso } from './pgoutput-decoder.js';
import { TransactionAssembler } from './transaction-assembler.js';
import { wal2jsonDecoder } from './wal2json-decoder.js';

// 2026-11-26T21:26:52.848010Z in microseconds since the Unix epoch, as pg-logical-replication reports commit times.
const commitTime = 1_795_728_412_848_010n;

/** pgoutput's Relation and Insert messages as the server sends them (protocol 1), for the plugin to parse. */
const wire = {
  relation(relationOid: number, schema: string, name: string, columns: [string, number][]): Buffer {
    const described = columns.map(([column, typeOid]) => Buffer.concat([Buffer.from([0]), text(column), int32(typeOid), int32(-1)]));
    return Buffer.concat([Buffer.from('R'), int32(relationOid), text(schema), text(name), Buffer.from('d'), int16(columns.length), ...described]);
  },
  begin(finalLsn: bigint, microsSince2000: bigint, xid: number): Buffer {
    const fixed = Buffer.alloc(20);
    fixed.writeBigUInt64BE(finalLsn, 0);
    fixed.writeBigInt64BE(microsSince2000, 8);
    fixed.writeUInt32BE(xid, 16);
    return Buffer.concat([Buffer.from('B'), fixed]);
  },
  insert(relationOid: number, values: (string | null)[]): Buffer {
    const tuple = values.map((value) => (value === null ? Buffer.from('n') : Buffer.concat([Buffer.from('t'), int32(Buffer.byteLength(value)), Buffer.from(value)])));
    return Buffer.concat([Buffer.from('I'), int32(relationOid), Buffer.from('N'), int16(values.length), ...tuple]);
  },
};
const text = (value: string) => Buffer.from(`${value}\0`);
const int16 = (value: number) => Buffer.from([(value >> 8) & 0xff, value & 0xff]);
function int32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32BE(value);
  return buffer;
}

const OUTBOX_OID = 16400;
const OUTBOX_COLUMNS: [string, number][] = [['id', 2950], ['tenant_id', 25], ['event_type', 25], ['payload', 3802], ['metadata', 3802]];

/** The plugin walflow streams with, having parsed the outbox's relation message, as a stream's first insert follows it. */
function pluginAfterRelation(): { parse(buffer: Buffer): unknown; relation: unknown } {
  const plugin = pgoutputDecoder.createPlugin() as unknown as { parse(buffer: Buffer): unknown };
  const relation = plugin.parse(wire.relation(OUTBOX_OID, 'walflow', 'outbox', OUTBOX_COLUMNS));
  return { parse: (buffer) => plugin.parse(buffer), relation };
}

/** An outbox insert with this payload text, parsed by the plugin. */
function insert(payload: string, plugin = pluginAfterRelation()): unknown {
  return plugin.parse(wire.insert(OUTBOX_OID, ['00000000-0000-0000-0000-000000000001', 't1', 'policy.approved', payload, '{}']));
}

const decode = (raw: unknown) => pgoutputDecoder.decode(raw);

describe('pgoutput decoder', () => {
  it('decodes a transaction into the same events as wal2json', () => {
    const viaPgoutput = new TransactionAssembler({ outboxSchema: 'walflow', outboxTable: 'outbox' });
    viaPgoutput.accept(decode({ tag: 'begin', commitLsn: '00000000/02000000', commitTime, xid: 7 }));
    viaPgoutput.accept(decode(insert('{"policyId": "p1"}')));
    const [fromPgoutput] = viaPgoutput.accept(decode({ tag: 'commit', flags: 0, commitLsn: '00000000/02000000', commitEndLsn: '00000000/02000030', commitTime }));

    const viaWal2json = new TransactionAssembler({ outboxSchema: 'walflow', outboxTable: 'outbox' });
    const boundary = { xid: 7, timestamp: '2026-11-26 21:26:52.84801+00', lsn: '0/2000000', nextlsn: '0/2000030' };
    viaWal2json.accept(wal2jsonDecoder.decode({ action: 'B', ...boundary }));
    const row = { id: '00000000-0000-0000-0000-000000000001', tenant_id: 't1', event_type: 'policy.approved', payload: '{"policyId": "p1"}', metadata: '{}' };
    const columns = Object.entries(row).map(([name, value]) => ({ name, value }));
    viaWal2json.accept(wal2jsonDecoder.decode({ action: 'I', schema: 'walflow', table: 'outbox', columns }));
    const [fromWal2json] = viaWal2json.accept(wal2jsonDecoder.decode({ action: 'C', ...boundary }));

    expect(fromPgoutput?.events[0]).toMatchObject({ payload: { policyId: 'p1' }, xid: '7', commitLsn: parseLsn('0/2000000') });
    const instant = (iso: string | undefined) => (iso === undefined ? undefined : new Date(iso).getTime());
    expect(instant(fromPgoutput?.end?.committedAt)).toBe(instant(fromWal2json?.end?.committedAt));
    expect({ ...fromPgoutput?.events[0], committedAt: null }).toEqual({ ...fromWal2json?.events[0], committedAt: null });
    expect(fromPgoutput?.end?.endLsn).toBe(fromWal2json?.end?.endLsn);
  });

  it('keeps a jsonb string a string, so a payload that only looks like an object is parked', () => {
    const assembler = new TransactionAssembler({ outboxSchema: 'walflow', outboxTable: 'outbox' });
    assembler.accept(decode({ tag: 'begin', commitLsn: '00000000/02000000', commitTime, xid: 8 }));
    assembler.accept(decode(insert('"{\\"policyId\\": \\"p1\\"}"')));
    const [slice] = assembler.accept(decode({ tag: 'commit', flags: 0, commitLsn: '00000000/02000000', commitEndLsn: '00000000/02000030', commitTime }));
    expect(slice?.events).toEqual([]);
    expect(slice?.parked[0]).toMatchObject({ code: 'payload_invalid' });
  });

  it('hands json columns on as the text PostgreSQL sent, so a number JavaScript cannot hold is parked with its exact text', () => {
    const plugin = pluginAfterRelation();
    for (const payload of ['{"n": 1234567890123456789012}', `{"n": 1${'0'.repeat(400)}}`, '{"n": 9007199254740993}']) {
      const assembler = new TransactionAssembler({ outboxSchema: 'walflow', outboxTable: 'outbox' });
      assembler.accept(decode({ tag: 'begin', commitLsn: '00000000/02000000', commitTime, xid: 9 }));
      assembler.accept(decode(insert(payload, plugin)));
      const [slice] = assembler.accept(decode({ tag: 'commit', flags: 0, commitLsn: '00000000/02000000', commitEndLsn: '00000000/02000030', commitTime }));
      expect(slice?.events).toEqual([]);
      expect(slice?.parked[0]).toMatchObject({ code: 'payload_invalid', reason: expect.stringMatching(/at \$\.n a number JavaScript cannot hold exactly/), raw: { payload } });
    }
  });

  it('ignores bookkeeping and logical messages, refuses other changes and unknown tags', () => {
    const { relation: outbox } = pluginAfterRelation();
    expect(decode(outbox)).toEqual({ kind: 'ignored' });
    expect(decode({ tag: 'message', flags: 1, transactional: true, messageLsn: null, prefix: 'walflow', content: new Uint8Array() })).toEqual({ kind: 'ignored' });
    expect(decode({ tag: 'delete', relation: outbox, key: null, old: null })).toEqual({ kind: 'unexpected', action: 'delete' });
    expect(() => decode({ tag: 'stream_start' })).toThrow(/unexpected pgoutput message "stream_start"/);
    expect(() => decode({ tag: 'begin', commitLsn: null, commitTime, xid: 9 })).toThrow(/without an LSN/);
  });

  it('reads a transaction id as the unsigned 32 bits it is, as wal2json prints it', () => {
    const plugin = pgoutputDecoder.createPlugin() as unknown as { parse(buffer: Buffer): unknown };
    for (const xid of [7, 2 ** 31 + 5, 2 ** 32 - 1]) {
      expect(decode(plugin.parse(wire.begin(0x2000000n, 0n, xid)))).toMatchObject({ kind: 'begin', xid: String(xid) });
    }
  });

  it('turns commit times into ISO-8601 keeping microseconds', () => {
    expect(unixMicrosToIso(commitTime)).toBe('2026-11-26T21:26:52.848010+00:00');
    expect(unixMicrosToIso(1_000_000n)).toBe('1970-01-01T00:00:01.000000+00:00');
  });
});
