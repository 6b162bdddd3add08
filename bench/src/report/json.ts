import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { FigureResult } from './result.js';

export interface BenchReport {
  startedAt: string;
  seconds: number;
  scale: number;
  machine: { cpus: number; node: string; postgres: string };
  serverSettings: Record<string, string>;
  /** Whether walflow ran CPU-profiled (--profile): its figures are then slower than a plain run's. */
  profiled: boolean;
  figures: FigureResult[];
  /** Figures that failed, with their error: missing from `figures`, never silently. */
  failed: Array<{ figure: string; error: string }>;
}

/** JSON.stringify writes Infinity and NaN as null; the table says ∞ or —. */
export async function writeReport(path: string, report: BenchReport): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(report, null, 2)}\n`);
}
