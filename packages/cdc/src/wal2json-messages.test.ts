import { describe, expect, it } from 'vitest';
import { parseWal2JsonMessage, walTimestampToIso } from './wal2json-messages.js';

// Captured from wal2json 2.5, format-version 2, include-xids/timestamp/lsn, include-types off.
const begin = { action: 'B', xid: 730, timestamp: '2026-11-26 21:26:52.84801+00', lsn: '0/1539148', nextlsn: '0/1539178' };
const insert = {
  action: 'I',
  xid: 730,
  timestamp: '2026-11-26 21:26:52.84801+00',
  lsn: '0/1538DE0',
  schema: 'walflow',
  table: 'outbox',
  columns: [
    { name: 'id', value: 'a700d1e8-d645-4455-9d3b-e68bfef4e917' },
    { name: 'payload', value: '{"a": 1}' },
  ],
};

describe('wal2json format-version 2 messages', () => {
  it('accepts begin, insert, commit and logical messages', () => {
    expect(parseWal2JsonMessage(begin)).toMatchObject({ action: 'B', xid: 730 });
    expect(parseWal2JsonMessage(insert)).toMatchObject({ action: 'I', table: 'outbox' });
    expect(parseWal2JsonMessage({ ...begin, action: 'C' })).toMatchObject({ action: 'C', nextlsn: '0/1539178' });
    expect(parseWal2JsonMessage({ action: 'M', transactional: true, prefix: 'walflow', content: 'hb' })).toMatchObject({ action: 'M' });
  });

  it('rejects a format 1 changeset, naming the problem', () => {
    expect(() => parseWal2JsonMessage({ xid: 730, change: [] })).toThrow(/unexpected wal2json message: action/);
  });

  it('rejects a commit without its LSNs (include-lsn off)', () => {
    expect(() => parseWal2JsonMessage({ action: 'C', xid: 1, timestamp: 'x' })).toThrow(/lsn/);
  });

  it('rejects malformed LSNs and columns', () => {
    expect(() => parseWal2JsonMessage({ ...begin, lsn: '12' })).toThrow(/not an LSN/);
    expect(() => parseWal2JsonMessage({ ...insert, columns: [{ value: 1 }] })).toThrow(/columns/);
  });

  it('turns PostgreSQL timestamps into ISO-8601 keeping microseconds', () => {
    expect(walTimestampToIso('2026-11-26 21:26:52.84801+00')).toBe('2026-11-26T21:26:52.84801+00:00');
    expect(walTimestampToIso('2026-11-26 21:26:52.848012+05:30')).toBe('2026-11-26T21:26:52.848012+05:30');
    expect(new Date(walTimestampToIso('2026-11-26 21:26:52.84801+00')).toISOString()).toBe('2026-11-26T21:26:52.848Z');
  });
});
