import { describe, expect, it } from 'vitest';
import { secondsToInvalidation, WalRate } from './wal-rate.js';

describe('WalRate', () => {
  it('needs two samples, then smooths the rate', () => {
    const rate = new WalRate();
    expect(rate.observe(0, 0)).toBeNull();
    expect(rate.observe(10_000, 1000)).toBe(10_000);
    expect(rate.observe(10_000, 2000)).toBe(7000);
  });

  it('ignores samples that go back (a server restart)', () => {
    const rate = new WalRate();
    rate.observe(5000, 0);
    expect(rate.observe(1000, 1000)).toBeNull();
  });
});

describe('secondsToInvalidation', () => {
  it('divides what is left by the rate; unbounded or idle is null', () => {
    expect(secondsToInvalidation(1_000_000, 1000)).toBe(1000);
    expect(secondsToInvalidation(null, 1000)).toBeNull();
    expect(secondsToInvalidation(1_000_000, 0)).toBeNull();
    expect(secondsToInvalidation(1_000_000, null)).toBeNull();
  });
});
