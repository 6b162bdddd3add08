import type { WalflowDatabase } from '@walflow/core';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';

/** A Kysely over a pg pool. Every client's error must be handled, or it crashes the process. */
export function createDatabase(url: string, logger: Logger, options: { max?: number } = {}): Kysely<WalflowDatabase> {
  const pool = new pg.Pool({ connectionString: url, max: options.max ?? 10, application_name: 'walflow' });
  pool.on('error', (error) => logger.warn({ err: error }, 'idle database connection failed'));
  // A checked-out client whose server goes away between queries emits 'error' too; unheard, it kills the process.
  pool.on('connect', (client) => client.on('error', (error) => logger.warn({ err: error }, 'database connection failed')));
  return new Kysely<WalflowDatabase>({ dialect: new PostgresDialect({ pool }) });
}
