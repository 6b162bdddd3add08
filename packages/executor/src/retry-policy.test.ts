import { describe, expect, it } from 'vitest';
import { afterFailure } from './retry-policy.js';

describe('afterFailure', () => {
  it('retries with growing, jittered delays until the attempts run out', () => {
    const first = afterFailure(1, 3, { initialMs: 1000 });
    const second = afterFailure(2, 3, { initialMs: 1000 });
    expect(first.kind).toBe('retry');
    expect(first.kind === 'retry' && first.delayMs).toBeGreaterThanOrEqual(500);
    expect(first.kind === 'retry' && first.delayMs).toBeLessThanOrEqual(1000);
    expect(second.kind === 'retry' && second.delayMs).toBeGreaterThanOrEqual(1000);
    expect(second.kind === 'retry' && second.delayMs).toBeLessThanOrEqual(2000);
    expect(afterFailure(3, 3)).toEqual({ kind: 'dead' });
  });

  it('caps the delay', () => {
    const verdict = afterFailure(30, 100, { initialMs: 1000, maxMs: 10_000 });
    expect(verdict.kind === 'retry' && verdict.delayMs).toBeLessThanOrEqual(10_000);
  });

  it("starts over from the first delay in each allowance of attempts an operator's retry gives", () => {
    // Dead after 5 of 5, retried: 10 allowed, and the 6th attempt failed. It is the first of its round.
    const verdict = afterFailure(6, 10, { initialMs: 1000 }, 5);
    expect(verdict.kind === 'retry' && verdict.delayMs).toBeLessThanOrEqual(1000);
    // Queued with 10 attempts, its workflow since lowered to 3: its second failure backs off as a second one.
    const lowered = afterFailure(2, 10, { initialMs: 1000 }, 3);
    expect(lowered.kind === 'retry' && lowered.delayMs).toBeGreaterThanOrEqual(1000);
  });
});
