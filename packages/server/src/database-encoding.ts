import { WalflowError } from '@walflow/core';
import { sql, type QueryExecutorProvider } from 'kysely';

/** Encodings that take every character walflow's schema and events hold (SQL_ASCII passes bytes through). */
const UNICODE_ENCODINGS = new Set(['UTF8', 'SQL_ASCII']);

/**
 * Refuses a database whose encoding cannot hold any Unicode text: walflow's migrations hold characters LATIN1 has
 * not (they failed half-way with "has no equivalent in encoding"), and wal2json would hand its events' text over
 * unconverted where walflow reads UTF-8.
 */
export async function assertUnicodeDatabase(db: QueryExecutorProvider): Promise<void> {
  const { rows } = await sql<{ encoding: string; name: string }>`
    SELECT pg_encoding_to_char(encoding) AS encoding, datname AS name FROM pg_database WHERE datname = current_database()`.execute(db);
  const database = rows[0];
  if (database === undefined || UNICODE_ENCODINGS.has(database.encoding)) return;
  throw new WalflowError(
    'config_invalid',
    `database ${database.name} is encoded in ${database.encoding}; walflow needs a UTF8 database (CREATE DATABASE … ENCODING 'UTF8' TEMPLATE template0)`,
  );
}
