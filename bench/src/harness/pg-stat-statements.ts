import { withClient } from './pg-client.js';

export interface StatementCost {
  query: string;
  calls: number;
  totalMs: number;
  meanMs: number;
  /** Time spent planning it, which PL/pgSQL may spend again on every call. */
  planMs: number;
  rows: number;
  /** Run inside a function or trigger (its time is also in the statement that called it). */
  nested: boolean;
}

/**
 * Clears pg_stat_statements (loaded by the bench cluster with --profile) so the next read covers one phase only, and makes
 * sessions opened from now on also count the statements inside functions and triggers (a worker's claim is one
 * call of walflow.claim_runs, whose own statements would stay unseen) and the time spent planning each. Call it before walflow connects.
 */
export async function trackStatements(url: string): Promise<void> {
  await withClient(url, async (client) => {
    await client.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    const database = client.escapeIdentifier((await client.query<{ name: string }>('SELECT current_database() AS name')).rows[0]!.name);
    await client.query(`ALTER DATABASE ${database} SET pg_stat_statements.track = 'all'`);
    await client.query(`ALTER DATABASE ${database} SET pg_stat_statements.track_planning = on`);
    await client.query('SELECT pg_stat_statements_reset()');
  });
}

/** The statements of this database that took the most time, planning included, since the reset. */
export async function topStatements(url: string, limit: number): Promise<StatementCost[]> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ query: string; calls: string; total: number; mean: number; plan: number; rows: string; toplevel: boolean }>(
      `SELECT regexp_replace(query, '\\s+', ' ', 'g') AS query, calls, total_exec_time AS total, mean_exec_time AS mean,
              total_plan_time AS plan, rows, toplevel
         FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        ORDER BY total_exec_time + total_plan_time DESC LIMIT $1`,
      [limit],
    );
    return rows.map((row) => ({
      query: row.query,
      calls: Number(row.calls),
      totalMs: row.total,
      meanMs: row.mean,
      planMs: row.plan,
      rows: Number(row.rows),
      nested: !row.toplevel,
    }));
  });
}
