import { storableText, unstorableCharacter } from '@walflow/core';
import { createHash } from 'node:crypto';
import { Duration, UnsignedInt } from '@marcbachmann/cel-js/evaluator';

const PREVIEW_LENGTH = 60;

/** Names a CEL value's type (and a short preview) for "condition must be true or false, got …". */
export function describeCelValue(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return `string ${JSON.stringify(preview(value))}`;
  if (typeof value === 'number') return `double ${value}`;
  if (typeof value === 'bigint') return `int ${value}`;
  if (value instanceof UnsignedInt) return `uint ${value.toString()}`;
  if (value instanceof Date) return `timestamp ${isoOrInvalid(value)}`;
  if (value instanceof Duration) return `duration ${value.toString()}`;
  if (value instanceof Uint8Array) return `bytes of length ${value.length}`;
  if (Array.isArray(value)) return `list of ${value.length} element${value.length === 1 ? '' : 's'}`;
  if (typeof value === 'object') return 'map';
  return typeof value;
}

/**
 * Turns a key expression's value into the text guards store: strings as they are, numbers and booleans via
 * String (an int and a JSON number with the same value give the same key), null as 'null', timestamps as
 * ISO-8601, and lists or maps as JSON; a text of more than MAX_KEY_BYTES is bounded (boundedKey). Throws only
 * for a value JSON cannot hold (a cycle, which CEL cannot build).
 */
export function keyText(value: unknown): string {
  return boundedKey(unboundedKeyText(value));
}

function unboundedKeyText(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value instanceof Date) return isoOrInvalid(value);
  if (value instanceof UnsignedInt || value instanceof Duration) return value.toString();
  return JSON.stringify(value, jsonReplacer) ?? 'null';
}

/**
 * Keys are index keys (cooldowns, rate-limit windows, the running runs' concurrency index), and PostgreSQL
 * refuses an index entry beyond 2,704 bytes: a longer concurrency key failed every claim that reached its run,
 * on every worker, for ever. Well below that, a longer key keeps its first characters and ends in a hash of
 * the whole text, so keys stay readable and different values stay different keys. So does a key holding what
 * PostgreSQL cannot store (a NUL, a lone surrogate): refused, it failed its batch down to single events, which
 * were parked for every workflow.
 */
export const MAX_KEY_BYTES = 512;
const HASH_SEPARATOR = '…#';
/** A SHA-256 digest in base64url. */
const HASH_LENGTH = 43;
const KEPT_BYTES = MAX_KEY_BYTES - Buffer.byteLength(HASH_SEPARATOR) - HASH_LENGTH;

export function boundedKey(text: string): string {
  const storable = unstorableCharacter(text) === null;
  // A UTF-16 unit is at most three UTF-8 bytes: most keys need no counting.
  if (storable && (text.length * 3 <= MAX_KEY_BYTES || Buffer.byteLength(text) <= MAX_KEY_BYTES)) return text;
  let kept = '';
  let bytes = 0;
  for (const character of text) {
    // Counted as it is stored: U+FFFD for what PostgreSQL cannot store.
    const stored = storableText(character, character.length);
    bytes += Buffer.byteLength(stored);
    if (bytes > KEPT_BYTES) break;
    kept += stored;
  }
  // Lone surrogates have no UTF-8 of their own, so such a text is hashed as its UTF-16 units; others as before.
  const hashed = storable ? text : Buffer.from(text, 'utf16le');
  return `${kept}${HASH_SEPARATOR}${createHash('sha256').update(hashed).digest('base64url')}`;
}

/** JSON.stringify refuses bigint and writes Maps as `{}`; CEL produces both. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof UnsignedInt || value instanceof Duration) return value.toString();
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Uint8Array) return Array.from(value);
  return value;
}

function isoOrInvalid(date: Date): string {
  return Number.isNaN(date.getTime()) ? 'Invalid Date' : date.toISOString();
}

function preview(text: string): string {
  return text.length > PREVIEW_LENGTH ? `${storableText(text, PREVIEW_LENGTH)}…` : text;
}
