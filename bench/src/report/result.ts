import type { FigureId } from '../options.js';
import type { ResidentMemory } from '../harness/memory.js';

/** A goal from the issue, printed beside the measurement it applies to. */
export interface Target {
  description: string;
  met: boolean;
}

/** One line of the result table. */
export interface Measurement {
  /** A stable name for other figures (and readers of latest.json) to find this line by. */
  key?: string;
  name: string;
  value: number;
  unit: string;
  /** Shown instead of `value` when one number does not say enough (a distribution: p50 / p95 / p99 / max). */
  display?: string;
  /** What the value is compared with, measured in the same run. */
  baseline?: { name: string; value: number; unit: string };
  /** value / baseline, when the comparison is a ratio. */
  ratio?: number;
  /** Goals from the issue this line answers; the table says whether each is met. */
  targets?: Target[];
}

export interface FigureResult {
  id: FigureId;
  title: string;
  measurements: Measurement[];
  /** walflow's resident memory at the end of the figure (figure 6), one entry per walflow process. */
  memory: Array<{ label: string } & ResidentMemory>;
  /** How the figure was measured: what ran, which choices were made. */
  notes: string[];
  /** Raw numbers behind the table, for latest.json. */
  details: Record<string, unknown>;
  seconds: number;
}

export function target(description: string, met: boolean): Target {
  return { description, met };
}
