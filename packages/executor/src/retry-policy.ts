import { backoffDelay, type BackoffOptions } from '@walflow/core';

export type RetryPolicyOptions = BackoffOptions;

export type RetryVerdict = { kind: 'retry'; delayMs: number } | { kind: 'dead' };

/**
 * After a failed attempt: retry later with capped, jittered exponential backoff, or give up (dead). `allowance` is
 * the attempts the workflow gives a run: `walflow dead-runs retry` raises a dead run's maxAttempts by as many, and
 * its backoff starts over from the first, as a new run's does, rather than where the attempts before left it.
 */
export function afterFailure(attempts: number, maxAttempts: number, options: RetryPolicyOptions = {}, allowance?: number): RetryVerdict {
  if (attempts >= maxAttempts) return { kind: 'dead' };
  const { initialMs = 1000, maxMs = 5 * 60_000, factor = 2 } = options;
  // Attempts beyond one allowance were given by operators' retries; a run whose workflow lowered its allowance
  // since it was queued (10 to 3, say) has no attempts beyond that difference, and backs off as it would have.
  const retried = allowance === undefined ? 0 : Math.max(0, maxAttempts - allowance);
  const attempt = attempts > retried ? attempts - retried : attempts;
  // Half fixed, half jitter: retries spread out but never come back immediately.
  const ceiling = Math.min(maxMs, initialMs * factor ** (attempt - 1));
  return { kind: 'retry', delayMs: Math.round(ceiling / 2 + backoffDelay(attempt - 1, { initialMs: initialMs / 2, maxMs: maxMs / 2, factor })) };
}
