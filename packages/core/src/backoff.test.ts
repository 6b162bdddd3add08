import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff.js';

describe('backoffDelay', () => {
  it('grows exponentially up to the cap', () => {
    const top = () => 1;
    expect([0, 1, 2, 3].map((attempt) => backoffDelay(attempt, { initialMs: 100, maxMs: 500 }, top))).toEqual([100, 200, 400, 500]);
    expect(backoffDelay(50, { initialMs: 100, maxMs: 500 }, top)).toBe(500);
  });

  it('draws the delay below the ceiling (jitter)', () => {
    expect(backoffDelay(2, { initialMs: 100 }, () => 0.5)).toBe(200);
    expect(backoffDelay(2, { initialMs: 100 }, () => 0)).toBe(0);
  });
});
