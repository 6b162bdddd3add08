import { WalflowError } from '@walflow/core';

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

const RELATIVE = /^-(\d+)([smhdw])$/;

/** A date, optionally a time of day (seconds and fraction optional), optionally an offset. */
const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|([+-])(\d{2}):?(\d{2})?)?$/i;

/** The years every timestamptz column and parameter of PostgreSQL holds (it refuses dates beyond its range). */
const FIRST_YEAR = 1;
const LAST_YEAR = 9999;

/**
 * A point in time typed by an operator: ISO-8601, `now`, or relative to now such as `-2h`, `-30m`, `-7d`. A time
 * without an offset is UTC, as a date alone is, whatever the machine's time zone; a date or time that does not
 * exist (`2026-02-30`, `24:00`) is refused, not rolled over, and so is one outside the years 1 to 9999.
 */
export function parseTime(text: string, now: Date = new Date()): Date {
  const trimmed = text.trim();
  if (trimmed === 'now') return now;
  const relative = RELATIVE.exec(trimmed);
  const parsed = relative ? new Date(now.getTime() - Number(relative[1]) * UNITS[relative[2]!]!) : absolute(trimmed);
  if (parsed === null || Number.isNaN(parsed.getTime())) {
    throw new WalflowError('config_invalid', `not a time: ${JSON.stringify(text)} (use ISO-8601 such as 2026-11-26T12:00:00Z, UTC without an offset, or now, -30m, -2h, -7d)`);
  }
  const year = parsed.getUTCFullYear();
  if (year < FIRST_YEAR || year > LAST_YEAR) {
    throw new WalflowError('config_invalid', `not a time PostgreSQL can hold: ${JSON.stringify(text)} is in the year ${year} (years ${FIRST_YEAR} to ${LAST_YEAR})`);
  }
  return parsed;
}

/**
 * The time `parseTime` reads, to the microsecond PostgreSQL keeps, as an ISO-8601 UTC timestamp for SQL: a `Date`
 * holds milliseconds only, and a bound copied from an event's commit time (`2026-11-26T12:00:00.123456Z`) would
 * take in, or leave out, the events of the rest of its millisecond. Digits beyond the sixth are dropped.
 */
export function exactTimestamp(text: string, now: Date = new Date()): string {
  const instant = parseTime(text, now);
  const fraction = isRelativeTime(text) ? undefined : ISO_8601.exec(text.trim())?.[7];
  const microseconds = (fraction ?? '').padEnd(6, '0').slice(3, 6);
  return instant.toISOString().replace(/Z$/, `${microseconds}Z`);
}

/** Whether `parseTime` reads the text against now (`now`, `-2h`) rather than as an instant of its own. */
export function isRelativeTime(text: string): boolean {
  const trimmed = text.trim();
  return trimmed === 'now' || RELATIVE.test(trimmed);
}

function absolute(text: string): Date | null {
  const match = ISO_8601.exec(text);
  if (!match) return null;
  const [year, month, day, hour = 0, minute = 0, second = 0] = match.slice(1, 7).map((part) => (part === undefined ? undefined : Number(part)));
  const milliseconds = Number(`0.${match[7] ?? '0'}`) * 1000;
  const [offsetHours, offsetOfHour] = [Number(match[10] ?? 0), Number(match[11] ?? 0)];
  if (offsetHours > 14 || offsetOfHour > 59) return null;
  const offsetMinutes = match[9] === undefined ? 0 : (match[9] === '-' ? -1 : 1) * (offsetHours * 60 + offsetOfHour);
  // Not Date.UTC, which reads the years 0 to 99 as 1900 to 1999. Both roll 30 February over into March: a date
  // that comes back different did not exist.
  const check = new Date(0);
  check.setUTCFullYear(year!, month! - 1, day);
  check.setUTCHours(hour, minute, second, milliseconds);
  const local = check.getTime();
  const exists = check.getUTCFullYear() === year && check.getUTCMonth() === month! - 1 && check.getUTCDate() === day && check.getUTCHours() === hour && check.getUTCMinutes() === minute && check.getUTCSeconds() === second;
  return exists ? new Date(local - offsetMinutes * 60_000) : null;
}
