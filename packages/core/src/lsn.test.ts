import { describe, expect, it } from 'vitest';
import { compareLsn, formatLsn, maxLsn, parseLsn } from './lsn.js';

describe('LSN', () => {
  it('orders 0/FF below 1/0 and below 0/100, which string comparison gets wrong', () => {
    expect(compareLsn(parseLsn('0/FF'), parseLsn('1/0'))).toBe(-1);
    expect('0/FF' > '0/100').toBe(true);
    expect(compareLsn(parseLsn('0/FF'), parseLsn('0/100'))).toBe(-1);
    expect('9/0' > '10/0').toBe(true);
    expect(compareLsn(parseLsn('9/0'), parseLsn('10/0'))).toBe(-1);
    expect(maxLsn(parseLsn('0/FF'), parseLsn('1/0'))).toBe(parseLsn('1/0'));
  });

  it('compares as 64-bit numbers across the 32-bit boundary', () => {
    expect(parseLsn('1/0') - parseLsn('0/FFFFFFFF')).toBe(1n);
    expect(compareLsn(parseLsn('A/1'), parseLsn('9/FFFFFFFF'))).toBe(1);
    expect(compareLsn(parseLsn('16/B374D848'), parseLsn('16/b374d848'))).toBe(0);
  });

  it('formats back to PostgreSQL text', () => {
    expect(formatLsn(parseLsn('16/B374D848'))).toBe('16/B374D848');
    expect(formatLsn(parseLsn('0/0'))).toBe('0/0');
  });

  it('rejects what is not an LSN', () => {
    expect(() => parseLsn('16-B374')).toThrow(/not an LSN/);
    expect(() => parseLsn('123456789/0')).toThrow(/not an LSN/);
  });
});
