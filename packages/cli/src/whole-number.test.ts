import { describe, expect, it } from 'vitest';
import { wholeNumber } from './whole-number.js';

describe('wholeNumber', () => {
  const limit = wholeNumber(1, 10_000);

  it('takes the whole numbers from its lowest to its highest, both included', () => {
    expect([limit('1'), limit('10000'), limit(' 42 ')]).toEqual([1, 10_000, 42]);
  });

  it('refuses by name anything else: beyond either end, a fraction, an exponent, a sign, a blank', () => {
    for (const text of ['0', '10001', '1.5', '1e3', '-1', '+5', '', ' ', '0x10']) {
      expect(() => limit(text), JSON.stringify(text)).toThrow('expected a whole number from 1 to 10000.');
    }
  });
});
