import type { FigureResult } from '../report/result.js';

/** What every figure gets from the runner. */
export interface FigureContext {
  /** Superuser URL of the bench cluster's `postgres` database. */
  adminUrl: string;
  /** 1 for the full run; every count and duration is multiplied by it. */
  scale: number;
  /** Set with --profile: where the walflow process writes its CPU profile. */
  profileDir: string | undefined;
  /** Figures that already ran in this invocation (the peers figure puts walflow's numbers beside its own). */
  previous: readonly FigureResult[];
  log(line: string): void;
}

/** `count` scaled, never below `minimum`. */
export function scaled(context: FigureContext, count: number, minimum = 1): number {
  return Math.max(minimum, Math.round(count * context.scale));
}

/** How long a figure waits for walflow before it reports what was done by then: `seconds` scaled, at least `minimum`. */
export function deadlineAfter(context: FigureContext, seconds: number, minimum: number): { deadline: number; seconds: number } {
  const capped = Math.max(minimum, Math.round(seconds * context.scale));
  return { deadline: Date.now() + capped * 1000, seconds: capped };
}
