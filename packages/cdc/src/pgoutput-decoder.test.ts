import { parseLsn } from '@walflow/core';
import { describe, expect, it } from 'vitest';
import { pgoutputDecoder, unixMicrosToIso } from './pgoutput-decoder.js';
import { TransactionAssembler } from './transaction-assembler.js';
import { wal2jsonDecoder } from './wal2json-decoder.js';

// 2026-11-26T21:26:52.848010Z in microseconds since the Unix epoch, as pg-logical-replication reports commit times.
const commitTime = 1_795_728_412_848_010n;
const column = (name: string, typeOid: number) => ({ name, typeOid, flags: 0, typeMod: -1, typeSchema: null, typeName: null, parser: (raw: unknown) => raw });
const outbox = {
  tag: 'relation',
  relationOid: 16400,
  schema: 'walflow',
  name: 'outbox',
  replicaIdentity: 'default',
  keyColumns: ['id'],
  columns: [column('id', 2950), column('tenant_id', 25), column('event_type', 25), column('payload', 3802), column('metadata', 3802)],
};
// The library has already run node-postgres's type parsers: jsonb arrives parsed.
const insert = (payload: unknown) => ({
  tag: 'insert',
  relation: outbox,
  new: { id: '00000000-0000-0000-0000-000000000001', tenant_id: 't1', event_type: 'policy.approved', payload, metadata: {} },
});

const decode = (raw: unknown) => pgoutputDecoder.decode(raw);

describe('pgoutput decoder', () => {
  it('decodes a transaction into the same events as wal2json', () => {
    const viaPgoutput = new TransactionAssembler({ outboxSchema: 'walflow', outboxTable: 'outbox' });
    viaPgoutput.accept(decode({ tag: 'begin', commitLsn: '00000000/02000000', commitTime, xid: 7 }));
    viaPgoutput.accept(decode(insert({ policyId: 'p1' })));
    const [fromPgoutput] = viaPgoutput.accept(decode({ tag: 'commit', flags: 0, commitLsn: '00000000/02000000', commitEndLsn: '00000000/02000030', commitTime }));

    const viaWal2json = new TransactionAssembler({ outboxSchema: 'walflow', outboxTable: 'outbox' });
    const boundary = { xid: 7, timestamp: '2026-11-26 21:26:52.84801+00', lsn: '0/2000000', nextlsn: '0/2000030' };
    viaWal2json.accept(wal2jsonDecoder.decode({ action: 'B', ...boundary }));
    const columns = Object.entries(insert({}).new).map(([name, value]) => ({ name, value: typeof value === 'object' ? JSON.stringify(value) : value }));
    columns[3] = { name: 'payload', value: '{"policyId":"p1"}' };
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
    assembler.accept(decode(insert('{"policyId":"p1"}')));
    const [slice] = assembler.accept(decode({ tag: 'commit', flags: 0, commitLsn: '00000000/02000000', commitEndLsn: '00000000/02000030', commitTime }));
    expect(slice?.events).toEqual([]);
    expect(slice?.parked[0]).toMatchObject({ code: 'payload_invalid' });
  });

  it('ignores bookkeeping and logical messages, refuses other changes and unknown tags', () => {
    expect(decode(outbox)).toEqual({ kind: 'ignored' });
    expect(decode({ tag: 'message', flags: 1, transactional: true, messageLsn: null, prefix: 'walflow', content: new Uint8Array() })).toEqual({ kind: 'ignored' });
    expect(decode({ tag: 'delete', relation: outbox, key: null, old: null })).toEqual({ kind: 'unexpected', action: 'delete' });
    expect(() => decode({ tag: 'stream_start' })).toThrow(/unexpected pgoutput message "stream_start"/);
    expect(() => decode({ tag: 'begin', commitLsn: null, commitTime, xid: 9 })).toThrow(/without an LSN/);
  });

  it('turns commit times into ISO-8601 keeping microseconds', () => {
    expect(unixMicrosToIso(commitTime)).toBe('2026-11-26T21:26:52.848010+00:00');
    expect(unixMicrosToIso(1_000_000n)).toBe('1970-01-01T00:00:01.000000+00:00');
  });
});
