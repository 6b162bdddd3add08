import { elementPath, isInexactNumber, memberPath } from '@walflow/core';

/**
 * A JSON number JavaScript cannot hold has at least 16 digits in a row: PostgreSQL prints jsonb numbers in
 * full, never with an exponent. Payloads without such a run, nearly all of them, are not walked.
 */
const LONG_DIGIT_RUN = /\d{16}/;

/**
 * Where `value`, parsed from `text`, holds a number that JSON.parse could not keep: an integer beyond ±(2^53 − 1)
 * (JavaScript rounds 9007199254740993 to 9007199254740992) or one beyond the range of a double. Walking on with
 * it would record, match and send another value than the one committed. Returns its path (`$.order.id`), or
 * null. Long decimals keep their first 15–17 digits and are not reported.
 */
export function inexactNumberPath(text: string, value: unknown): string | null {
  return LONG_DIGIT_RUN.test(text) ? find(value, '$') : null;
}

function find(value: unknown, path: string): string | null {
  if (typeof value === 'number') return isInexactNumber(value) ? path : null;
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index++) {
      const found = find(value[index], elementPath(path, index));
      if (found !== null) return found;
    }
    return null;
  }
  if (typeof value === 'object' && value !== null) {
    for (const [key, member] of Object.entries(value)) {
      const found = find(member, memberPath(path, key));
      if (found !== null) return found;
    }
  }
  return null;
}
