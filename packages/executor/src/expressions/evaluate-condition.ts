import { EvaluationError } from '@marcbachmann/cel-js';
import { storableText, type EventEnvelope } from '@walflow/core';
import { describeCelValue, keyText } from './cel-value-text.js';
import type { CompiledExpression } from './compile-expression.js';
import { atPosition, sourcePosition } from './source-position.js';

export type ConditionResult = { ok: true; value: boolean } | { ok: false; error: string };
export type KeyResult = { ok: true; key: string } | { ok: false; error: string };

/**
 * Evaluates a condition (or bypass) for one event; never throws. CEL semantics are kept: reading a missing
 * key is an error (test with `has(event.payload.x)`), and so is anything but true or false as the result.
 */
export function evaluateCondition(expression: CompiledExpression, event: EventEnvelope): ConditionResult {
  const result = run(expression, event);
  if (!result.ok) return result;
  if (typeof result.value !== 'boolean') return failure(`condition must be true or false, got ${describeCelValue(result.value)}`);
  return { ok: true, value: result.value };
}

/** Evaluates a cooldown or rate-limit key for one event; never throws. Any value becomes text (see keyText). */
export function evaluateKey(expression: CompiledExpression, event: EventEnvelope): KeyResult {
  const result = run(expression, event);
  if (!result.ok) return result;
  try {
    return { ok: true, key: keyText(result.value) };
  } catch (error) {
    return failure(`key cannot be written as text: ${messageOf(error)}`);
  }
}

function run(expression: CompiledExpression, event: EventEnvelope): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    const value = expression.evaluate(event);
    // Only asynchronous custom functions make the library return a promise, and none are registered.
    if (value instanceof Promise) return failure('expression returned a promise');
    return { ok: true, value };
  } catch (error) {
    return failure(evaluationMessage(error, expression.source));
  }
}

/** The library's short message plus where in the expression it happened. */
function evaluationMessage(error: unknown, source: string): string {
  if (error instanceof EvaluationError) {
    const offset = error.range?.start;
    return offset === undefined ? error.summary : `${error.summary} ${atPosition(sourcePosition(source, offset))}`;
  }
  return messageOf(error);
}

/**
 * What went wrong, as a decision can store it: the library's message may quote event text whole (a 16 MiB
 * string it could not parse, say), or cut through an emoji, which the decision's jsonb would refuse, failing the
 * whole batch.
 */
function failure(error: string): { ok: false; error: string } {
  return { ok: false, error: storableText(error, ERROR_TEXT_CHARS) };
}

const ERROR_TEXT_CHARS = 1000;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
