import { z } from 'zod';

/**
 * Schemas for input that JSON and zod accept and PostgreSQL refuses, so an endpoint can answer 400 naming the field
 * instead of failing in the database.
 */

/** A half of a surrogate pair on its own: JSON can escape one (`"\ud800"`), UTF-8 cannot encode it. */
const LONE_SURROGATE = /\p{Cs}/u;

/** Text PostgreSQL stores as it is: jsonb and text refuse NUL; jsonb refuses half a surrogate pair, text gets U+FFFD for it. */
export const storableText = z
  .string()
  .refine((text) => !text.includes('\u0000') && !LONE_SURROGATE.test(text), 'has a NUL character or half a surrogate pair, which PostgreSQL cannot store');

/** The year and the offset hours of an instant as zod's ISO datetime writes it (`Z` or `±HH:MM`). */
const YEAR_AND_OFFSET = /^(\d{4})-.*(?:Z|[+-](\d{2}):\d{2})$/;

/** PostgreSQL's calendar has no year 0 (1 BC precedes AD 1), and it refuses offsets from ±16:00 on. */
const LARGEST_OFFSET_HOURS = 15;

/** An ISO-8601 instant with its offset that a PostgreSQL timestamptz holds; only an ISO instant is checked further. */
export const storableInstant = z.iso.datetime({ offset: true, abort: true }).refine((text) => {
  const match = YEAR_AND_OFFSET.exec(text);
  return match !== null && match[1] !== '0000' && Number(match[2] ?? 0) <= LARGEST_OFFSET_HOURS;
}, `is not a time PostgreSQL can hold (no year 0000, offsets up to ±${LARGEST_OFFSET_HOURS}:59)`);
