/**
 * A number that does not survive JSON between JavaScript and PostgreSQL as the same value: an integer beyond
 * ±(2^53 − 1), which JavaScript cannot hold exactly (9007199254740993 parses as 9007199254740992), and NaN or
 * ±Infinity, which JSON.stringify writes as null. emit refuses such a number and the consumer parks an event that
 * holds one, so both ends agree on it.
 */
export function isInexactNumber(value: number): boolean {
  return !Number.isFinite(value) || (Number.isInteger(value) && !Number.isSafeInteger(value));
}
