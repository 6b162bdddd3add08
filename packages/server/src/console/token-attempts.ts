import { parseIpv6 } from '@walflow/core';
import { isIPv6 } from 'node:net';

/** Failed token attempts from one address within the window before that address must wait. */
export const MAX_FAILED_TOKENS = 10;
const WINDOW_MS = 60_000;
/** Addresses tracked at most: beyond that the oldest window is forgotten first, so memory stays bounded. */
const MAX_ADDRESSES = 10_000;

/**
 * Counts failed token attempts (a sign-in, a bearer token) per client address (per /64 for IPv6: addressGroup),
 * in fixed windows of a minute. An address with MAX_FAILED_TOKENS failures in its window may not try a token
 * again until the window ends, whether the next one would be right or not: a guess then tells nothing, and
 * guessing a token costs a minute per ten tries. Behind a reverse proxy every client has the proxy's address and
 * they wait together; a session already signed in (its cookie) is never held up.
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

/**
 * The address whose failures count together: an IPv4 address (IPv4-mapped IPv6 included) on its own, an IPv6
 * address by its /64, which one host or network usually holds whole, so that walking through its addresses buys
 * no further guesses.
 */
export function addressGroup(address: string): string {
  const withoutZone = address.split('%')[0]!;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(withoutZone);
  if (mapped) return mapped[1]!;
  if (!isIPv6(withoutZone)) return address;
  return `${(parseIpv6(address) >> 64n).toString(16).padStart(16, '0')}/64`;
}
