import { withClient } from './pg-client.js';

export interface StatementCost {
  query: string;
  calls: number;
  totalMs: number;
  meanMs: number;
  rows: number;
}

/** Clears pg_stat_statements (loaded by the bench cluster) so the next read covers one phase only. */
export async function resetStatements(url: string): Promise<void> {
  await withClient(url, async (client) => {
    await client.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await client.query('SELECT pg_stat_statements_reset()');
  });
}

/** The statements of this database that took the most execution time since the reset. */
export async function topStatements(url: string, limit: number): Promise<StatementCost[]> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ query: string; calls: string; total: number; mean: number; rows: string }>(
      `SELECT regexp_replace(query, '\\s+', ' ', 'g') AS query, calls, total_exec_time AS total, mean_exec_time AS mean, rows
         FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        ORDER BY total_exec_time DESC LIMIT $1`,
      [limit],
    );
    return rows.map((row) => ({ query: row.query, calls: Number(row.calls), totalMs: row.total, meanMs: row.mean, rows: Number(row.rows) }));
  });
}
