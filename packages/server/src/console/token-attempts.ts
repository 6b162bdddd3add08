/** Failed token attempts from one address within the window before that address must wait. */
export const MAX_FAILED_TOKENS = 10;
const WINDOW_MS = 60_000;
/** Addresses tracked at most: beyond that the oldest window is forgotten first, so memory stays bounded. */
const MAX_ADDRESSES = 10_000;

/**
 * Counts failed token attempts (a sign-in, a bearer token) per client address, in fixed windows of a minute. An
 * address with MAX_FAILED_TOKENS failures in its window may not try a token again until the window ends, whether
 * the next one would be right or not: a guess then tells nothing, and guessing a token costs a minute per ten
 * tries. Behind a reverse proxy every client has the proxy's address and they wait together; a session already
 * signed in (its cookie) is never held up.
 */
export class TokenAttempts {
  private readonly windows = new Map<string, { start: number; failures: number }>();

  /** Milliseconds until the address may try a token again; 0 when it may now. */
  waitFor(address: string, now = performance.now()): number {
    const window = this.windows.get(address);
    if (window === undefined || now - window.start >= WINDOW_MS) return 0;
    return window.failures >= MAX_FAILED_TOKENS ? Math.ceil(window.start + WINDOW_MS - now) : 0;
  }

  failed(address: string, now = performance.now()): void {
    const window = this.windows.get(address);
    if (window !== undefined && now - window.start < WINDOW_MS) {
      window.failures++;
      return;
    }
    this.windows.delete(address);
    // Maps keep insertion order: the first entry holds the oldest window.
    if (this.windows.size >= MAX_ADDRESSES) this.windows.delete(this.windows.keys().next().value!);
    this.windows.set(address, { start: now, failures: 1 });
  }
}
