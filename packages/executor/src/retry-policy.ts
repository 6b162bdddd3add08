import { backoffDelay, type BackoffOptions } from '@walflow/core';

export type RetryPolicyOptions = BackoffOptions;

export type RetryVerdict = { kind: 'retry'; delayMs: number } | { kind: 'dead' };

/** After a failed attempt: retry later with capped, jittered exponential backoff, or give up (dead). */
export function afterFailure(attempts: number, maxAttempts: number, options: RetryPolicyOptions = {}): RetryVerdict {
  if (attempts >= maxAttempts) return { kind: 'dead' };
  const { initialMs = 1000, maxMs = 5 * 60_000, factor = 2 } = options;
  // Half fixed, half jitter: retries spread out but never come back immediately.
  const ceiling = Math.min(maxMs, initialMs * factor ** (attempts - 1));
  return { kind: 'retry', delayMs: Math.round(ceiling / 2 + backoffDelay(attempts - 1, { initialMs: initialMs / 2, maxMs: maxMs / 2, factor })) };
}
