import { ParseError, TypeError as CelTypeError, type ParseResult } from '@marcbachmann/cel-js';
import { WalflowError, type EventEnvelope } from '@walflow/core';
import { EVENT_VARIABLE } from '../event-scope.js';
import { celActivation, celEnvironment } from './cel-environment.js';
import { countMacrosReading } from './ast-children.js';
import { evaluateWithinBounds } from './bounded-evaluation.js';
import { findTreeProblem, type TreeProblemKind } from './check-expression-tree.js';
import { atPosition, sourcePosition } from './source-position.js';

export interface ExpressionLimits {
  /** @default 2000 characters */
  maxLength?: number;
  /** AST levels; parentheses count as a level, a chain of `&&` or `||` as one. @default 32 */
  maxDepth?: number;
  /** How many macros (`exists`, `all`, `map`…) may enclose another; 1 refuses a macro inside a macro. @default 1 */
  maxMacroNesting?: number;
}

export interface CompileExpressionOptions extends ExpressionLimits {
  /** Names the expression in messages (`bypass: …`, `cooldown.key: …`). @default 'condition' */
  field?: string;
  /** Refuse, when applied, an expression whose type is known and is not bool (a string, a list…). */
  expectBoolean?: boolean;
}

/** A CEL expression parsed and checked once, evaluated for every event. */
export interface CompiledExpression {
  readonly source: string;
  /** The type the check inferred: `bool`, `string`… or `dyn` when it depends on the payload. */
  readonly resultType: string;
  /**
   * Throws the library's EvaluationError (missing key, type mismatch, division by zero), or
   * EvaluationDeadlineExceeded when a macro ran out of time on a large event; see evaluateCondition.
   */
  evaluate(event: EventEnvelope): unknown;
}

export const DEFAULT_EXPRESSION_LIMITS: Readonly<Required<ExpressionLimits>> = Object.freeze({ maxLength: 2000, maxDepth: 32, maxMacroNesting: 1 });

export type ExpressionProblemKind = 'too_long' | 'syntax' | 'type' | 'not_boolean' | TreeProblemKind;

/**
 * Compiles a walflow expression, refusing (with a position) what would fail or be unsafe on every event:
 * syntax errors, variables other than `event`, functions outside the allow-list (regular expressions above
 * all), macros inside macros or over the output of `map`, expressions too long or too deep, and type errors
 * the checker can prove.
 *
 * Why evaluation is bounded although the library has no step budget: CEL has no loops, recursion or
 * user-defined functions; the only iteration is a macro walking a list once. The limits bound the
 * expression, macros cannot nest or iterate over grown (`map`) values, so the work is polynomial in the size
 * of the event: linear without a macro or with one whose body reads only its element, up to
 * quadratic with one whose body reads the event (`x in event.payload.other`), which evaluateWithinBounds puts under
 * a deadline on large events.
 */
export function compileExpression(source: string, options: CompileExpressionOptions = {}): CompiledExpression {
  const field = options.field ?? 'condition';
  const maxLength = options.maxLength ?? DEFAULT_EXPRESSION_LIMITS.maxLength;
  const maxDepth = options.maxDepth ?? DEFAULT_EXPRESSION_LIMITS.maxDepth;
  const maxMacroNesting = options.maxMacroNesting ?? DEFAULT_EXPRESSION_LIMITS.maxMacroNesting;
  const fail = (kind: ExpressionProblemKind, what: string, offset: number): never => {
    const position = sourcePosition(source, offset);
    throw new WalflowError('workflow_invalid', `${field}: ${what} ${atPosition(position)}`, { details: { field, problem: kind, position, source } });
  };

  if (source.length > maxLength) fail('too_long', `expression is ${source.length} characters long, the limit is ${maxLength}`, maxLength);
  if (source.trim() === '') fail('syntax', 'expression is empty', 0);

  let parsed: ParseResult;
  try {
    parsed = celEnvironment(maxDepth).parse(source);
  } catch (error) {
    if (!(error instanceof ParseError)) throw error;
    const offset = error.range?.start ?? 0;
    if (error.code === 'limit_exceeded' && error.summary.includes('maxDepth')) {
      return fail('too_deep', `expression is nested deeper than ${maxDepth} levels`, offset);
    }
    return fail('syntax', `syntax error: ${error.summary}`, offset);
  }

  const problem = findTreeProblem(parsed.ast, { maxDepth, maxMacroNesting });
  if (problem) fail(problem.kind, problem.message, problem.offset);

  const checked = parsed.check();
  if (!checked.valid) {
    const error = checked.error;
    const kind = error instanceof CelTypeError ? 'type' : 'syntax';
    return fail(kind, `${kind === 'type' ? 'type error' : 'syntax error'}: ${error?.summary ?? 'invalid expression'}`, error?.range?.start ?? 0);
  }
  const resultType = checked.type ?? 'dyn';
  if (options.expectBoolean && resultType !== 'bool' && resultType !== 'dyn') {
    fail('not_boolean', `must be true or false, but the expression gives a ${resultType}`, 0);
  }

  const macros = countMacrosReading(parsed.ast, EVENT_VARIABLE);
  return {
    source,
    resultType,
    evaluate: (event: EventEnvelope): unknown => evaluateWithinBounds(() => parsed(celActivation(event)) as unknown, event, macros),
  };
}
