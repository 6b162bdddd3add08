import vm from 'node:vm';
import type { EventEnvelope } from '@walflow/core';

/**
 * How long one expression may take on one event once it may cost more than PLAIN_WORK. Expressions take
 * microseconds; this is for the event that makes a macro's body walk a large list once per element.
 */
export const EVALUATION_DEADLINE_MS = 1000;

/**
 * An expression with macros evaluates without a deadline while (macros × the event's JSON characters²) stays
 * under this: at most a few milliseconds (`list.all(x, !(x in other))`, `list.exists(x, size(list + list) > 0)`
 * and `contains` in a macro measured 2–8 ns per character² of payload).
 */
const PLAIN_WORK = 1_000_000;

/** Thrown by evaluateWithinBounds when an evaluation ran out of time. */
export class EvaluationDeadlineExceeded extends Error {
  constructor(
    readonly deadlineMs: number,
    readonly eventCharacters: number,
  ) {
    super(
      `evaluation took longer than ${deadlineMs} ms on an event of ${eventCharacters.toLocaleString('en')} characters of JSON: a macro whose body walks a large list costs the square of its length`,
    );
    this.name = 'EvaluationDeadlineExceeded';
  }
}

/**
 * Runs `evaluate` for `event`, bounded in time when the expression could cost more than about linear time.
 *
 * Why: the CEL library has no step budget. Macros cannot nest (check-expression-tree.ts), but one macro's body
 * may still walk the event (`x in event.payload.other`, `list + list`), so a macro costs up to the square of the
 * event's size, and the outbox accepts payloads of megabytes: one such event would hold the dispatcher, and
 * every tenant's events behind it, for hours. Node can interrupt synchronous code only by running it as a script
 * with a timeout (node:vm, a watchdog thread per call, ~0.1 ms), so only the evaluations that could be costly
 * pay for one: expressions with a macro whose body reads the event (`macros` counts them), on events larger than
 * PLAIN_WORK allows.
 */
export function evaluateWithinBounds<T>(evaluate: () => T, event: EventEnvelope, macros: number): T {
  if (macros === 0) return evaluate();
  const characters = eventCharacters(event);
  if (macros * characters * characters <= PLAIN_WORK) return evaluate();
  deadlineContext.evaluate = evaluate;
  try {
    return callEvaluate.runInContext(deadlineContext, { timeout: EVALUATION_DEADLINE_MS }) as T;
  } catch (error) {
    if (isScriptTimeout(error)) throw new EvaluationDeadlineExceeded(EVALUATION_DEADLINE_MS, characters);
    throw error;
  } finally {
    deadlineContext.evaluate = undefined;
  }
}

/** One context for every bounded evaluation: the script only calls back into this module's realm. */
const deadlineContext = vm.createContext({ evaluate: undefined as (() => unknown) | undefined });
const callEvaluate = new vm.Script('evaluate()', { filename: 'walflow-bounded-evaluation' });

function isScriptTimeout(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT';
}

/** Each event's size is measured once, whatever number of workflows evaluate it. */
const measured = new WeakMap<EventEnvelope, number>();

/** The event's payload and metadata as JSON text, in characters: the text it was committed as, when it is at hand. */
function eventCharacters(event: EventEnvelope): number {
  let characters = measured.get(event);
  if (characters === undefined) {
    characters = (event.payloadJson ?? JSON.stringify(event.payload)).length + (event.metadataJson ?? JSON.stringify(event.metadata)).length;
    measured.set(event, characters);
  }
  return characters;
}
