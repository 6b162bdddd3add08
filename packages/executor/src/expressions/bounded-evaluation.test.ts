import { parseLsn, type EventEnvelope } from '@walflow/core';
import { describe, expect, it } from 'vitest';
import { evaluateWithinBounds } from './bounded-evaluation.js';

/** An event whose payload and metadata are about `characters` characters of JSON. */
function eventOf(characters: number): EventEnvelope {
  return {
    id: 'e1',
    type: 'policy.approved',
    tenantId: 't1',
    aggregateType: null,
    aggregateId: null,
    payload: { s: 'x'.repeat(characters - 10) },
    metadata: {},
    committedAt: '2026-11-29T12:00:00Z',
    commitLsn: parseLsn('0/10'),
    position: 0,
    xid: '7',
  };
}

/** Whether the evaluation ran as the deadline's script, which alone can be interrupted. */
const underDeadline = (): boolean => new Error().stack?.includes('walflow-bounded-evaluation') ?? false;

describe('evaluateWithinBounds', () => {
  it('puts a deadline on an expression with a macro once the square of the event could cost more than a millisecond or so', () => {
    expect(evaluateWithinBounds(underDeadline, eventOf(900), 1)).toBe(false);
    expect(evaluateWithinBounds(underDeadline, eventOf(1100), 1)).toBe(true);
    // Two macros cost twice: the bound comes at a smaller event.
    expect(evaluateWithinBounds(underDeadline, eventOf(900), 2)).toBe(true);
    expect(evaluateWithinBounds(underDeadline, eventOf(1_000_000), 0)).toBe(false);
  });
});
