export interface BackoffOptions {
  /** @default 500 */
  initialMs?: number;
  /** @default 30000 */
  maxMs?: number;
  /** @default 2 */
  factor?: number;
}

/**
 * Capped exponential backoff with full jitter: a delay drawn from [0, min(max, initial * factor^attempt)], so
 * processes that failed together do not retry together.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const { initialMs = 500, maxMs = 30_000, factor = 2 } = options;
  const ceiling = Math.min(maxMs, initialMs * factor ** Math.max(0, attempt));
  return Math.round(ceiling * random());
}
