import { defineCatalog, defineEvent, parseLsn } from '@walflow/core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { TransactionAssembler } from './transaction-assembler.js';
import { wal2jsonDecoder } from './wal2json-decoder.js';

// Messages as wal2json prints them, decoded the way the stream decodes them.
const decode = (raw: unknown) => wal2jsonDecoder.decode(raw);
const timestamp = '2026-11-26 21:26:52.84801+00';
const begin = (xid: number) => decode({ action: 'B', xid, timestamp, lsn: '0/2000', nextlsn: '0/2030' });
const commit = (xid: number) => decode({ action: 'C', xid, timestamp, lsn: '0/2000', nextlsn: '0/2030' });
const outboxInsert = (id: string, type = 'policy.approved', payload = '{"policyId":"p1"}', table = 'outbox', metadata = '{"actorId":"u1"}') => decode({
  action: 'I',
  schema: 'walflow',
  table,
  columns: [
    { name: 'id', value: id },
    { name: 'tenant_id', value: 't1' },
    { name: 'event_type', value: type },
    { name: 'aggregate_type', value: 'policy' },
    { name: 'aggregate_id', value: null },
    { name: 'payload', value: payload },
    { name: 'metadata', value: metadata },
    { name: 'created_at', value: timestamp },
  ],
});

const assembler = (sliceSize?: number, sliceTextLength?: number) => new TransactionAssembler({ outboxSchema: 'walflow', outboxTable: 'outbox', sliceSize, sliceTextLength });

describe('TransactionAssembler', () => {
  it('emits a committed transaction with its events in order, positions and commit position', () => {
    const a = assembler();
    expect(a.accept(begin(7))).toEqual([]);
    expect(a.inTransaction).toBe(true);
    a.accept(outboxInsert('00000000-0000-0000-0000-000000000001'));
    a.accept(outboxInsert('00000000-0000-0000-0000-000000000002'));
    const [slice] = a.accept(commit(7));
    expect(a.inTransaction).toBe(false);
    expect(slice?.events.map((event) => [event.id.slice(-1), event.position])).toEqual([['1', 0], ['2', 1]]);
    expect(slice?.events[0]).toMatchObject({
      type: 'policy.approved',
      tenantId: 't1',
      aggregateType: 'policy',
      aggregateId: null,
      payload: { policyId: 'p1' },
      metadata: { actorId: 'u1' },
      xid: '7',
      committedAt: '2026-11-26T21:26:52.84801+00:00',
      commitLsn: parseLsn('0/2000'),
    });
    expect(slice?.end).toEqual({ commitLsn: parseLsn('0/2000'), endLsn: parseLsn('0/2030'), committedAt: '2026-11-26T21:26:52.84801+00:00' });
  });

  it('hands a transaction of large rows on in slices by their text too', () => {
    const a = assembler(2000, 250_000);
    a.accept(begin(10));
    const large = JSON.stringify({ text: 'x'.repeat(100_000) });
    const slices = [1, 2, 3, 4, 5].flatMap((n) => a.accept(outboxInsert(`00000000-0000-0000-0000-00000000000${n}`, 'policy.approved', large)));
    slices.push(...a.accept(commit(10)));
    // A slice is handed on once its text reaches the limit: three rows of 100,000 characters, then two.
    expect(slices.map((slice) => [slice.events.length, slice.end !== null])).toEqual([[3, false], [2, true]]);
    expect(slices[0]!.textLength).toBeGreaterThan(300_000);
  });

  it('hands a large transaction on in slices; only the last one ends it', () => {
    const a = assembler(2);
    a.accept(begin(8));
    const slices = [1, 2, 3, 4, 5].flatMap((n) => a.accept(outboxInsert(`00000000-0000-0000-0000-00000000000${n}`)));
    slices.push(...a.accept(commit(8)));
    expect(slices.map((slice) => [slice.events.length, slice.end !== null])).toEqual([[2, false], [2, false], [1, true]]);
    expect(slices.flatMap((slice) => slice.events.map((event) => event.position))).toEqual([0, 1, 2, 3, 4]);
  });

  it('emits an empty transaction so it can be acknowledged', () => {
    const a = assembler();
    a.accept(begin(9));
    expect(a.accept(commit(9))).toEqual([{ events: [], parked: [], end: expect.objectContaining({ endLsn: parseLsn('0/2030') }), textLength: 0 }]);
  });

  it('parks rows that cannot be events and goes on', () => {
    const catalog = defineCatalog(defineEvent('policy.approved', z.object({ policyId: z.string() })));
    const a = new TransactionAssembler({ outboxSchema: 'walflow', outboxTable: 'outbox', catalog });
    a.accept(begin(10));
    a.accept(outboxInsert('00000000-0000-0000-0000-000000000001', 'policy.approved', '[1,2]'));
    a.accept(outboxInsert('00000000-0000-0000-0000-000000000002', 'policy.unknown'));
    a.accept(outboxInsert('00000000-0000-0000-0000-000000000003', 'policy.approved', '{"policyId":5}'));
    a.accept(outboxInsert('00000000-0000-0000-0000-000000000004'));
    const [slice] = a.accept(commit(10));
    expect(slice?.events.map((event) => event.position)).toEqual([3]);
    expect(slice?.parked.map((row) => [row.outboxId?.slice(-1), row.code])).toEqual([
      ['1', 'payload_invalid'],
      ['2', 'event_unknown'],
      ['3', 'payload_invalid'],
    ]);
    expect(slice?.parked[0]?.raw).toMatchObject({ payload: '[1,2]', event_type: 'policy.approved' });
  });

  it("passes the events a run emits about itself by the catalog only with walflow's runId: an application's are checked", () => {
    const catalog = defineCatalog(defineEvent('policy.approved', z.object({ policyId: z.string() })));
    const a = new TransactionAssembler({ outboxSchema: 'walflow', outboxTable: 'outbox', catalog });
    a.accept(begin(14));
    a.accept(outboxInsert('00000000-0000-0000-0000-000000000001', 'email.sent', '{}', 'outbox', '{}'));
    a.accept(outboxInsert('00000000-0000-0000-0000-000000000002', 'email.sent', '{}', 'outbox', '{"runId":"r1"}'));
    const [slice] = a.accept(commit(14));
    expect(slice?.parked.map((row) => [row.outboxId?.slice(-1), row.code])).toEqual([['1', 'event_unknown']]);
    expect(slice?.events.map((event) => event.id.slice(-1))).toEqual(['2']);
  });

  it('hands a transaction on, by default, in slices of 2,000 rows or 8 Mi characters', () => {
    const id = (n: number) => `00000000-0000-0000-0000-${String(n).padStart(12, '0')}`;
    const byRows = assembler();
    byRows.accept(begin(15));
    const rowSlices = Array.from({ length: 2000 }, (_, n) => byRows.accept(outboxInsert(id(n)))).flat();
    expect(rowSlices.map((slice) => slice.events.length)).toEqual([2000]);
    const byText = assembler();
    byText.accept(begin(16));
    // Each row a little over 1 Mi characters: the eighth takes the slice past 8 Mi.
    const large = `{"policyId":"${'x'.repeat(1024 * 1024)}"}`;
    const textSlices = Array.from({ length: 8 }, (_, n) => byText.accept(outboxInsert(id(n), 'policy.approved', large))).flat();
    expect(textSlices.map((slice) => slice.events.length)).toEqual([8]);
  });

  it('ignores tables other than the outbox', () => {
    const a = assembler();
    a.accept(begin(11));
    a.accept(outboxInsert('00000000-0000-0000-0000-000000000001', 'policy.approved', '{}', 'policies'));
    expect(a.accept(commit(11))[0]?.events).toEqual([]);
  });

  it('refuses a stream out of order', () => {
    const a = assembler();
    expect(() => a.accept(outboxInsert('00000000-0000-0000-0000-000000000001'))).toThrow(/outside a transaction/);
    a.accept(begin(12));
    expect(() => a.accept(begin(13))).toThrow(/inside xid 12/);
    expect(() => a.accept(decode({ action: 'D' }))).toThrow(/only stream inserts into the outbox/);
    // A COMMIT of another transaction than the one open, or with none open, would end a transaction it is not.
    expect(() => a.accept(commit(13))).toThrow(/COMMIT of xid 13 inside xid 12/);
    expect(() => assembler().accept(commit(1))).toThrow(/COMMIT outside a transaction/);
  });
});
