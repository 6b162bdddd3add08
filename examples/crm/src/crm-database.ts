import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { CrmDatabase } from './schema.js';

/** The application's own connection pool, typed with the crm schema. */
export function createCrmDatabase(url: string, options: { max?: number } = {}): Kysely<CrmDatabase> {
  const pool = new pg.Pool({ connectionString: url, max: options.max ?? 5, application_name: 'crm' });
  // An idle connection the server closed is replaced on the next query; unheard, its 'error' would end the process.
  pool.on('error', () => undefined);
  return new Kysely<CrmDatabase>({ dialect: new PostgresDialect({ pool }) });
}
