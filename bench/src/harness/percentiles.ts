/** A latency distribution in milliseconds. */
export interface Distribution {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles: every reported value is one that was observed. */
export function distribution(values: readonly number[]): Distribution {
  if (values.length === 0) return { count: 0, p50: NaN, p95: NaN, p99: NaN, max: NaN };
  const sorted = Float64Array.from(values).sort();
  const at = (fraction: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)]!;
  return { count: sorted.length, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted[sorted.length - 1]! };
}

/**
 * The distribution of `total` latencies of which only `values` were observed before the bench stopped waiting:
 * the others count as infinite, so a percentile they reach reads ∞ instead of looking better than it was.
 */
export function censoredDistribution(values: readonly number[], total: number): Distribution {
  const missing = Math.max(0, total - values.length);
  return distribution(missing === 0 ? values : [...values, ...new Array<number>(missing).fill(Infinity)]);
}

/** The arithmetic mean: for a handful of rounds or databases, where a nearest-rank median of two is the smaller. */
export function mean(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}
