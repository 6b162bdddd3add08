import { parseLsn, type EventEnvelope } from '@walflow/core';
import { describe, expect, it } from 'vitest';
import { compileExpression, type CompiledExpression } from './compile-expression.js';
import { EVALUATION_DEADLINE_MS } from './bounded-evaluation.js';
import { MAX_KEY_BYTES } from './cel-value-text.js';
import { evaluateCondition, evaluateKey } from './evaluate-condition.js';

const event: EventEnvelope = {
  id: 'e1',
  type: 'policy.approved',
  tenantId: 't1',
  aggregateType: 'policy',
  aggregateId: 'p1',
  payload: { premium: 1500, agentId: 'a1', tags: ['x'] },
  metadata: { actorId: 'u1', priority: 'critical' },
  committedAt: '2026-11-26T21:26:52.84801+00:00',
  commitLsn: parseLsn('0/10'),
  position: 0,
  xid: '7',
};

const condition = (source: string) => evaluateCondition(compileExpression(source), event);
const key = (source: string) => evaluateKey(compileExpression(source), event);

describe('evaluateCondition', () => {
  it('returns the boolean result', () => {
    expect(condition("event.payload.premium > 1000 && event.type.startsWith('policy.')")).toEqual({ ok: true, value: true });
    expect(condition("event.metadata.priority == 'low'")).toEqual({ ok: true, value: false });
    expect(condition('has(event.payload.agentId)')).toEqual({ ok: true, value: true });
    expect(condition("event.committedAt >= timestamp('2026-11-26T21:26:52.848Z')")).toEqual({ ok: true, value: true });
  });

  it('reports a missing key as an error, with its position (has() is the way to test presence)', () => {
    expect(condition('event.payload.missing == 1')).toEqual({ ok: false, error: 'No such key: missing at line 1, column 15' });
    expect(condition('has(event.payload.missing) && event.payload.missing == 1')).toEqual({ ok: true, value: false });
  });

  it('reports a type mismatch and a division by zero', () => {
    expect(condition("event.payload.agentId > 1")).toMatchObject({ ok: false, error: expect.stringMatching(/no such overload/) });
    expect(condition('event.payload.premium + 1 > 0')).toMatchObject({ ok: false, error: expect.stringMatching(/no such overload: dyn<double> \+ int/) });
    expect(condition('int(event.payload.premium) / 0 == 1')).toMatchObject({ ok: false, error: expect.stringMatching(/^division by zero at line 1, column 1$/) });
  });

  it('refuses a result that is not true or false', () => {
    expect(condition('event.payload.premium')).toEqual({ ok: false, error: 'condition must be true or false, got double 1500' });
    expect(condition('event.type')).toEqual({ ok: false, error: 'condition must be true or false, got string "policy.approved"' });
    expect(condition('event.payload.tags')).toEqual({ ok: false, error: 'condition must be true or false, got list of 1 element' });
    expect(condition('size(event.payload.tags)')).toEqual({ ok: false, error: 'condition must be true or false, got int 1' });
    expect(condition('event.payload')).toEqual({ ok: false, error: 'condition must be true or false, got map' });
  });

  it('reports an error a decision can store: no half of an emoji at the preview\'s cut, no NUL, no megabytes of the event', () => {
    const withText = (text: string) => evaluateCondition(compileExpression('event.payload.approved'), { ...event, payload: { approved: text } });
    const cut = withText(`${'a'.repeat(59)}😀 and more`);
    expect(cut).toEqual({ ok: false, error: `condition must be true or false, got string "${'a'.repeat(59)}\uFFFD…"` });
    const throwing: CompiledExpression = {
      source: 'x',
      resultType: 'dyn',
      evaluate: () => {
        throw new Error(`Invalid duration string: \u0000${'1'.repeat(100_000)}`);
      },
    };
    const long = evaluateCondition(throwing, event);
    expect(long.ok).toBe(false);
    if (!long.ok) {
      expect(long.error).toHaveLength(1000);
      expect(long.error).toMatch(/^Invalid duration string: \uFFFD1+$/);
    }
  });

  it('never throws, even when the expression itself does', () => {
    const throwing: CompiledExpression = {
      source: 'x',
      resultType: 'dyn',
      evaluate: () => {
        throw new RangeError('boom');
      },
    };
    expect(evaluateCondition(throwing, event)).toEqual({ ok: false, error: 'boom' });
    expect(evaluateKey(throwing, event)).toEqual({ ok: false, error: 'boom' });
  });
});

describe('evaluateKey', () => {
  it('keeps strings as they are', () => {
    expect(key('event.payload.agentId')).toEqual({ ok: true, key: 'a1' });
    expect(key("event.tenantId + ':' + event.aggregateId")).toEqual({ ok: true, key: 't1:p1' });
  });

  it('writes numbers and booleans with String, the same for an int and a JSON number', () => {
    expect(key('event.payload.premium')).toEqual({ ok: true, key: '1500' });
    expect(key('int(event.payload.premium)')).toEqual({ ok: true, key: '1500' });
    expect(key('event.payload.premium > 1')).toEqual({ ok: true, key: 'true' });
  });

  it('writes null, timestamps and lists or maps as JSON', () => {
    expect(key('null')).toEqual({ ok: true, key: 'null' });
    expect(key('event.committedAt')).toEqual({ ok: true, key: '2026-11-26T21:26:52.848Z' });
    expect(key('event.payload.tags')).toEqual({ ok: true, key: '["x"]' });
    expect(key('[event.aggregateId, size(event.payload.tags)]')).toEqual({ ok: true, key: '["p1",1]' });
    expect(key("{'agent': event.payload.agentId, 'n': 2}")).toEqual({ ok: true, key: '{"agent":"a1","n":2}' });
    expect(key('event.metadata')).toEqual({ ok: true, key: '{"actorId":"u1","priority":"critical"}' });
  });

  it('bounds a long key to MAX_KEY_BYTES of UTF-8: its beginning and a hash of the whole, different for different values', () => {
    const long = (text: string) => evaluateKey(compileExpression('event.payload.text'), { ...event, payload: { text } });
    const keyOf = (text: string): string => {
      const result = long(text);
      if (!result.ok) throw new Error(result.error);
      return result.key;
    };
    const exact = 'é'.repeat(MAX_KEY_BYTES / 2);
    expect(keyOf(exact)).toBe(exact);
    for (const text of ['a'.repeat(5000), 'é'.repeat(3000), '😀'.repeat(2000)]) {
      const bounded = keyOf(text);
      expect(Buffer.byteLength(bounded)).toBeLessThanOrEqual(MAX_KEY_BYTES);
      expect(bounded).toMatch(/…#[\w-]{43}$/);
      expect(text.startsWith(bounded.slice(0, bounded.indexOf('…#')))).toBe(true);
      expect(keyOf(text)).toBe(bounded);
      expect(keyOf(`${text}!`)).not.toBe(bounded);
    }
  });

  it('reports an evaluation error', () => {
    expect(key('event.payload.missing')).toEqual({ ok: false, error: 'No such key: missing at line 1, column 15' });
  });
});

describe('an expression that would cost the square of a large event', () => {
  // 40,000 elements in each list: 1.6 billion comparisons, minutes of work without a deadline.
  const large: EventEnvelope = {
    ...event,
    payload: { ids: Array.from({ length: 40_000 }, (_, n) => n), blocked: Array.from({ length: 40_000 }, (_, n) => -n - 1) },
  };
  const quadratic = compileExpression('event.payload.ids.all(id, !(id in event.payload.blocked))');

  it('is stopped at the deadline and reported as an evaluation error, for a condition and for a key', () => {
    const started = performance.now();
    const result = evaluateCondition(quadratic, large);
    expect(performance.now() - started).toBeLessThan(EVALUATION_DEADLINE_MS * 5);
    expect(result).toEqual({
      ok: false,
      error: expect.stringMatching(new RegExp(`^evaluation took longer than ${EVALUATION_DEADLINE_MS} ms on an event of [\\d,]+ characters of JSON`)),
    });
    expect(evaluateKey(compileExpression("string(event.payload.ids.exists(id, id in event.payload.blocked))"), large)).toMatchObject({
      ok: false,
      error: expect.stringMatching(/^evaluation took longer than/),
    });
  });

  it('leaves the same expression working on the next event, and a macro that is linear working on the large one', () => {
    expect(evaluateCondition(quadratic, { ...event, payload: { ids: [1, 2], blocked: [3] } })).toEqual({ ok: true, value: true });
    expect(evaluateCondition(quadratic, { ...event, payload: { ids: [1, 2], blocked: [2] } })).toEqual({ ok: true, value: false });
    expect(evaluateCondition(compileExpression('event.payload.ids.exists(id, id == 39999.0)'), large)).toEqual({ ok: true, value: true });
    expect(evaluateCondition(compileExpression('size(event.payload.ids) == 40000'), large)).toEqual({ ok: true, value: true });
  });
});
