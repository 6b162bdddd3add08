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
