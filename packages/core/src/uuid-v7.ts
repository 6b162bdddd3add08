import { randomUUID } from 'node:crypto';

/**
 * A UUIDv7 with the layout of `walflow.uuid_v7()`: 48 bits of Unix time in milliseconds, version 7, then the
 * random bits and variant of a version 4 UUID. Made in Node where walflow writes many rows at once (outbox
 * events, runs): the column default costs PostgreSQL a function call per row, and a known id needs no RETURNING.
 *
 * Made now (no time given), ids of one process increase (RFC 9562, 6.2, method 1): within a millisecond the 12
 * bits after the version count up from a random start, and a clock that stepped back does not take them back.
 * Rows of one transaction share their `created_at`, and `walflow repair` orders them by id: two events emitted
 * in one millisecond, in random order, were re-dispatched in either, and an ordered workflow ran them so.
 */
export function uuidV7(unixMs?: number): string {
  const random = randomUUID();
  if (unixMs !== undefined) return layout(unixMs, random.slice(15, 18), random);
  const now = Date.now();
  if (now > last.unixMs) last = { unixMs: now, counter: Number.parseInt(random.slice(15, 17), 16) };
  else if (++last.counter > 0xfff) last = { unixMs: last.unixMs + 1, counter: 0 };
  return layout(last.unixMs, last.counter.toString(16).padStart(3, '0'), random);
}

/** The last id made now: its millisecond and its 12-bit count. */
let last = { unixMs: 0, counter: 0 };

function layout(unixMs: number, counter: string, random: string): string {
  const time = unixMs.toString(16).padStart(12, '0');
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${counter}${random.slice(18)}`;
}

const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether the text is a uuid as PostgreSQL writes one: ids of events, runs, workflows and dead letters. */
export function isUuid(text: string): boolean {
  return UUID_TEXT.test(text);
}
