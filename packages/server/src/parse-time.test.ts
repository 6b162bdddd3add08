import { describe, expect, it } from 'vitest';
import { exactTimestamp, parseTime } from './parse-time.js';

const now = new Date('2026-11-26T12:00:00Z');

describe('parseTime', () => {
  it('reads relative times back from now', () => {
    expect(parseTime('-2h', now).toISOString()).toBe('2026-11-26T10:00:00.000Z');
    expect(parseTime('-30m', now).toISOString()).toBe('2026-11-26T11:30:00.000Z');
    expect(parseTime('-7d', now).toISOString()).toBe('2026-11-19T12:00:00.000Z');
    expect(parseTime('now', now)).toBe(now);
  });

  it('reads ISO-8601', () => {
    expect(parseTime('2026-11-01T08:00:00+01:00').toISOString()).toBe('2026-11-01T07:00:00.000Z');
    expect(parseTime('2026-11-01').toISOString()).toBe('2026-11-01T00:00:00.000Z');
  });

  it('reads a time without an offset as UTC, whatever the machine\'s time zone', () => {
    const zone = process.env.TZ;
    process.env.TZ = 'America/New_York';
    try {
      expect(parseTime('2026-11-26T12:00:00').toISOString()).toBe('2026-11-26T12:00:00.000Z');
      expect(parseTime('2026-11-26 12:00').toISOString()).toBe('2026-11-26T12:00:00.000Z');
      expect(parseTime('2026-11-26T12:00:00.123456-0500').toISOString()).toBe('2026-11-26T17:00:00.123Z');
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
    }
  });

  it('says what it expects', () => {
    expect(() => parseTime('yesterday')).toThrow(/not a time: "yesterday" \(use ISO-8601/);
    expect(() => parseTime('-2 hours')).toThrow(/not a time/);
  });

  it('refuses times PostgreSQL cannot hold (before year 1 or after 9999)', () => {
    for (const text of ['-5000000d', '-800000w', '9999-12-31T23:00:00-05:00']) {
      expect(() => parseTime(text, now), text).toThrow(/not a time PostgreSQL can hold/);
    }
    expect(parseTime('0001-01-01').toISOString()).toBe('0001-01-01T00:00:00.000Z');
    expect(parseTime('9999-12-31T23:59:59Z').toISOString()).toBe('9999-12-31T23:59:59.000Z');
  });

  it('refuses dates and times that do not exist instead of rolling them over, and relative times out of range', () => {
    for (const text of ['2026-02-30', '2026-13-01', '2026-11-26T24:00:00Z', '2026-11-26T12:60Z', '2026-11-26T12:00+99:99', '-1000000000d', '2026-11-26Tnoon']) {
      expect(() => parseTime(text), text).toThrow(/not a time/);
    }
  });
});

describe('exactTimestamp', () => {
  it('keeps the microseconds a Date drops, for an absolute time in any offset; relative times and none have none', () => {
    expect(exactTimestamp('2026-11-26T12:00:00.123456Z', now)).toBe('2026-11-26T12:00:00.123456Z');
    expect(exactTimestamp('2026-11-26T12:00:00.1234567-05:00', now)).toBe('2026-11-26T17:00:00.123456Z');
    expect(exactTimestamp('2026-11-26T12:00:00.5', now)).toBe('2026-11-26T12:00:00.500000Z');
    expect(exactTimestamp('2026-11-26', now)).toBe('2026-11-26T00:00:00.000000Z');
    expect(exactTimestamp('-2h', now)).toBe('2026-11-26T10:00:00.000000Z');
    expect(exactTimestamp('now', now)).toBe('2026-11-26T12:00:00.000000Z');
  });
});
