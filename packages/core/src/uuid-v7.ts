import { randomUUID } from 'node:crypto';

/**
 * A UUIDv7 with the layout of `walflow.uuid_v7()`: 48 bits of Unix time in milliseconds, version 7, then the
 * random bits and variant of a version 4 UUID. Made in Node where walflow writes many rows at once (outbox
 * events, runs): the column default costs PostgreSQL a function call per row, and a known id needs no RETURNING.
 */
export function uuidV7(unixMs: number = Date.now()): string {
  const time = unixMs.toString(16).padStart(12, '0');
  const random = randomUUID();
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${random.slice(15)}`;
}

const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether the text is a uuid as PostgreSQL writes one: ids of events, runs, workflows and dead letters. */
export function isUuid(text: string): boolean {
  return UUID_TEXT.test(text);
}
