import { elementPath, isInexactNumber, isJsonObject, MAX_JSON_DEPTH, memberPath, nestsDeeperThan, unstorableCharacter, WalflowError } from '@walflow/core';

/**
 * The most compact JSON a payload or metadata may take. Migration 0036 bounds PostgreSQL's text of the value at
 * twice this, which its spaces after `:` and `,` never reach from JSON this long.
 */
const MAX_JSON_BYTES = 16 * 1024 * 1024;

/**
 * The JSON text of an event's payload or metadata, as the outbox stores it. Refused, with where they are, are the
 * values that would be stored as something else or refused later: numbers JSON cannot carry exactly (the
 * consumer parks them; NaN and ±Infinity would silently become null), BigInt (a raw TypeError), Map and Set
 * (written as {}), text jsonb cannot hold (a raw 22P05 or 22P02), a value whose JSON is not an object, and one
 * that nests deeper than the consumer accepts (MAX_JSON_DEPTH) or is larger than an event may be (MAX_JSON_BYTES).
 * One JSON.stringify: its replacer sees each value as it is written, after its toJSON, so what is checked is
 * exactly what is stored.
 */
export function objectJson(value: unknown, subject: string): string {
  const paths = new Map<object, string>();
  const refuse = (problem: string): never => {
    throw new WalflowError('payload_invalid', `${subject} ${problem}`);
  };
  function check(this: object, key: string, written: unknown): unknown {
    const member = unboxed(written);
    const parent = paths.get(this);
    if (parent === undefined) {
      // The root, handed over as the '' member of a holder of its own.
      if (!isJsonObject(member) || member instanceof Map || member instanceof Set) refuse(`must be a JSON object; its JSON would be ${jsonKind(member)}`);
      paths.set(member as object, '$');
      return member;
    }
    const inArray = Array.isArray(this);
    const where = (): string => (inArray ? elementPath(parent, Number(key)) : memberPath(parent, key));
    if (member === undefined || typeof member === 'function' || typeof member === 'symbol') return member; // not written
    const before = (this as Record<string, unknown>)[key];
    // An invalid Date writes itself as null: stored so, the time it was meant to hold would be lost without a word.
    if (before instanceof Date && Number.isNaN(before.getTime())) refuse(`holds an invalid Date at ${where()}, which JSON would write as null`);
    if (typeof member === 'string') {
      const unstorable = unstorableCharacter(member);
      if (unstorable !== null) refuse(`holds ${unstorable} at ${where()}, which PostgreSQL cannot store`);
    } else if (typeof member === 'number') {
      if (isInexactNumber(member)) {
        refuse(
          Number.isFinite(member)
            ? `holds ${member} at ${where()}, an integer beyond ±(2^53 - 1) that JavaScript cannot hold exactly: send it as a string`
            : `holds ${member} at ${where()}, which JSON cannot hold (JSON.stringify would write null)`,
        );
      }
    } else if (typeof member === 'bigint') {
      refuse(`holds a BigInt at ${where()}, which JSON cannot hold: send it as a string`);
    } else if (member instanceof Map || member instanceof Set) {
      refuse(`holds ${jsonKind(member)} at ${where()}: convert it to an object or an array`);
    } else if (typeof member === 'object' && member !== null) {
      paths.set(member, where());
    }
    if (!inArray) {
      const unstorable = unstorableCharacter(key);
      if (unstorable !== null) refuse(`holds ${unstorable} in the key of ${where()}, which PostgreSQL cannot store`);
    }
    return member;
  }
  let json: string;
  try {
    json = JSON.stringify(value, check);
  } catch (error) {
    throw WalflowError.from(error, 'payload_invalid', `${subject} cannot be written as JSON`);
  }
  if (nestsDeeperThan(json)) refuse(`nests deeper than ${MAX_JSON_DEPTH} levels, which the consumer would park`);
  // A string's UTF-8 takes at most three bytes per character: most texts need no counting.
  if (json.length * 3 > MAX_JSON_BYTES && Buffer.byteLength(json) > MAX_JSON_BYTES) {
    refuse(`takes ${Buffer.byteLength(json)} bytes of JSON, more than an event may (16 MiB)`);
  }
  return json;
}

/**
 * `new Number(NaN)`, `new String('a\0')` and their kin: JSON.stringify writes them as their primitive after the
 * replacer has seen them as objects, so they are checked, and written, as that primitive.
 */
function unboxed(value: unknown): unknown {
  return value instanceof Number || value instanceof String || value instanceof Boolean ? value.valueOf() : value;
}

function jsonKind(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Map || value instanceof Set) return `a ${value.constructor.name} (JSON writes {})`;
  return `a ${typeof value}`;
}
