import { isWalflowError, parseLsn, type EventEnvelope, type WalflowError } from '@walflow/core';
import { describe, expect, it } from 'vitest';
import { compileExpression } from './compile-expression.js';

const event: EventEnvelope = {
  id: 'e1',
  type: 'policy.approved',
  tenantId: 't1',
  aggregateType: 'policy',
  aggregateId: 'p1',
  payload: { premium: 1500, agentId: 'a1', tags: ['x'], items: [{ sku: 'a', tags: ['new'] }] },
  metadata: { actorId: 'u1', priority: 'critical' },
  committedAt: '2026-11-26T21:26:52.84801+00:00',
  commitLsn: parseLsn('0/10'),
  position: 0,
  xid: '7',
};

/** Compiles and returns the WalflowError it must throw. */
function refusal(source: string, options?: Parameters<typeof compileExpression>[1]): WalflowError {
  try {
    compileExpression(source, options);
  } catch (error) {
    if (isWalflowError(error, 'workflow_invalid')) return error;
    throw error;
  }
  throw new Error(`expected ${source} to be refused`);
}

describe('compileExpression accepts and evaluates', () => {
  it.each([
    ["event.payload.premium > 1000 && event.type.startsWith('policy.')", true],
    ["event.metadata.priority == 'critical'", true],
    ['has(event.payload.agentId)', true],
    ['has(event.payload.missing)', false],
    ["event.tenantId == 't1' && event.aggregateType == 'policy' && event.aggregateId == 'p1' && event.id == 'e1'", true],
    ["event.committedAt > timestamp('2026-11-26T21:00:00Z')", true],
    ["event.committedAt - duration('1h') < timestamp('2026-11-26T20:00:00Z')", false],
    ['event.committedAt.getHours() == 21', true],
    ["'x' in event.payload.tags && size(event.payload.tags) == 1", true],
    ["event.payload.items.exists(i, 'new' in i.tags)", true],
    ["event.payload.items.filter(i, i.sku == 'a').map(i, i.sku) == ['a']", true],
    ['event.payload.premium * 2.0 == 3000.0 && int(event.payload.premium) + 1 == 1501', true],
    ["event.payload.agentId.upperAscii() == 'A1' && event.type.contains('approved')", true],
    ["event.type in ['policy.approved', 'policy.rejected']", true],
    ['event.aggregateType != null', true],
  ])('%s', (source, expected) => {
    const compiled = compileExpression(source);
    expect(compiled.source).toBe(source);
    expect(compiled.evaluate(event)).toBe(expected);
  });

  it('counts a long chain of || as one level, not as nesting', () => {
    const source = Array.from({ length: 40 }, (_, index) => `event.type == 't${index}'`).join(' || ');
    expect(compileExpression(source).evaluate(event)).toBe(false);
  });

  it('reports the inferred type, dyn when it depends on the payload', () => {
    expect(compileExpression("event.type == 'x'").resultType).toBe('bool');
    expect(compileExpression('event.payload.agentId').resultType).toBe('dyn');
    expect(compileExpression('event.type').resultType).toBe('string');
  });
});

describe('compileExpression refuses', () => {
  it('a syntax error, with its position', () => {
    const error = refusal("event.type == 'a' &&\n  (event.payload.premium >)");
    expect(error.message).toMatch(/^condition: syntax error: .+ at line 2, column 27$/);
    expect(error.details).toMatchObject({ problem: 'syntax', position: { line: 2, column: 27, offset: 47 } });
  });

  it('an empty expression', () => {
    expect(refusal('   ').details).toMatchObject({ problem: 'syntax' });
  });

  it('an unknown variable, with its position', () => {
    const error = refusal("event.type == 'a' && evnt.type == 'x'");
    expect(error.message).toBe("condition: unknown variable 'evnt'; expressions can only read event at line 1, column 22");
    expect(error.details).toMatchObject({ problem: 'unknown_variable', position: { line: 1, column: 22, offset: 21 } });
    expect(refusal('process.env').details).toMatchObject({ problem: 'unknown_variable', position: { offset: 0 } });
  });

  it("the library's own constants and a macro variable outside its macro", () => {
    expect(refusal('google.protobuf.Timestamp').details).toMatchObject({ problem: 'unknown_variable' });
    expect(refusal("event.payload.tags.exists(t, t == 'x') && t == 'x'").details).toMatchObject({ problem: 'unknown_variable', position: { offset: 42 } });
  });

  it('an unknown event field, found by the type check', () => {
    const error = refusal("event.tenantID == 't1'");
    expect(error.message).toMatch(/^condition: type error: .*tenantID.* at line 1, column 7$/);
    expect(error.details).toMatchObject({ problem: 'type' });
  });

  it('a type error the checker can prove', () => {
    expect(refusal('event.type + 1 == 2').details).toMatchObject({ problem: 'type', position: { offset: 0 } });
  });

  it('an expression longer than maxLength', () => {
    const source = `event.type == '${'x'.repeat(2000)}'`;
    const error = refusal(source);
    expect(error.message).toMatch(/^condition: expression is 2016 characters long, the limit is 2000 at line 1, column 2001$/);
    expect(error.details).toMatchObject({ problem: 'too_long' });
    expect(refusal("event.type == 'abc'", { maxLength: 10 }).details).toMatchObject({ problem: 'too_long', position: { offset: 10 } });
  });

  it('100 nested parentheses', () => {
    const source = `${'('.repeat(100)}event.type == 'x'${')'.repeat(100)}`;
    const error = refusal(source);
    expect(error.message).toMatch(/^condition: expression is nested deeper than 32 levels at line 1, column \d+$/);
    expect(error.details).toMatchObject({ problem: 'too_deep' });
  });

  it('100 negations', () => {
    const error = refusal(`${'!'.repeat(100)}true`);
    expect(error.message).toBe('condition: expression is nested deeper than 32 levels at line 1, column 33');
    expect(error.details).toMatchObject({ problem: 'too_deep', position: { offset: 32 } });
  });

  it('nesting deeper than a custom maxDepth', () => {
    expect(() => compileExpression('!!!true', { maxDepth: 4 })).not.toThrow();
    expect(refusal('!!!!true', { maxDepth: 4 }).details).toMatchObject({ problem: 'too_deep' });
  });

  it('matches, because of ReDoS', () => {
    const error = refusal("event.type.matches('^(a+)+$')");
    expect(error.message).toContain('regular expressions are not allowed');
    expect(error.message).toContain('ReDoS');
    expect(error.details).toMatchObject({ problem: 'regex_not_allowed', position: { line: 1, column: 12, offset: 11 } });
    expect(refusal("matches(event.type, 'a')").details).toMatchObject({ problem: 'regex_not_allowed', position: { offset: 0 } });
  });

  it('duration() of text and .contains() of a needle not written in the expression, whose cost no deadline stops', () => {
    const duration = refusal('duration(event.payload.ttl) > duration("1h")');
    expect(duration.message).toBe("condition: duration() takes a duration written in the expression, such as duration('1h'): parsing text from the event could stall the dispatcher at line 1, column 1");
    expect(duration.details).toMatchObject({ problem: 'literal_required', position: { offset: 0 } });
    expect(refusal('event.payload.comment.contains(event.payload.keyword)').details).toMatchObject({ problem: 'literal_required', position: { offset: 22 } });
    expect(refusal("event.payload.comment.contains('a' + event.type)").details).toMatchObject({ problem: 'literal_required' });
    expect(() => compileExpression("event.payload.comment.contains('vip') && timestamp(event.payload.at) - timestamp(event.payload.from) > duration('1h')")).not.toThrow();
  });

  it('functions and methods outside the allow-list', () => {
    const method = refusal("event.type.split('.').size() == 2");
    expect(method.message).toMatch(/^condition: method \.split\(\) is not allowed; allowed methods: .* at line 1, column 12$/);
    expect(method.details).toMatchObject({ problem: 'function_not_allowed' });
    expect(refusal('cel.bind(x, event.type, x == "a")').details).toMatchObject({ problem: 'function_not_allowed' });
    expect(refusal("dyn(event.type) == 'a'").message).toMatch(/^condition: function dyn\(\) is not allowed; allowed functions: size, has, /);
    expect(refusal("type(event.type) == 'string'").details).toMatchObject({ problem: 'function_not_allowed' });
  });

  it('a macro inside another macro, and a macro over the output of map', () => {
    expect(refusal("event.payload.items.exists(i, i.tags.exists(t, t == 'new'))").details).toMatchObject({ problem: 'macro_nesting' });
    expect(refusal("event.payload.tags.map(t, t + t).exists(t, t == 'xx')").details).toMatchObject({ problem: 'macro_nesting' });
    expect(refusal("[event.payload.tags.map(t, t + t)][0].map(t, t + t) == []").details).toMatchObject({ problem: 'macro_nesting' });
    expect(() => compileExpression("event.payload.items.exists(i, i.tags.exists(t, t == 'new'))", { maxMacroNesting: 2 })).not.toThrow();
  });

  it('a macro without a variable name', () => {
    expect(refusal('event.payload.tags.exists(true)').details).toMatchObject({ problem: 'macro_arguments' });
  });

  it('a non-boolean condition when asked to', () => {
    const error = refusal('event.type', { expectBoolean: true, field: 'bypass' });
    expect(error.message).toBe('bypass: must be true or false, but the expression gives a string at line 1, column 1');
    expect(() => compileExpression('event.payload.flag', { expectBoolean: true })).not.toThrow();
  });
});
