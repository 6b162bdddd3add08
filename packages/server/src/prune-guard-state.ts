import type { WalflowDatabase } from '@walflow/core';
import { sql, type Kysely, type QueryResult, type RawBuilder } from 'kysely';

/** A table of guard state: its name and alias, its primary key's columns with their types, and when a row is over. */
interface GuardTable {
  table: string;
  alias: string;
  key: readonly (readonly [column: string, type: string])[];
  expired: (cutoff: Date) => RawBuilder<boolean>;
}

/**
 * Guard state whose time was over before the cut: cooldowns that ended (or never began: the `-infinity` row a
 * check creates to lock), and rate-limit windows that closed, by the period the workflow now gives their limit
 * (a window of a workflow or a limit that is gone closes at its start). Nothing decided from now on reads them:
 * live events are committed now, and a replay's range lies within the retention window. Without this, every key
 * a workflow ever saw kept a cooldown row, and every (key, period) a window row, for ever.
 */
const GUARD_TABLES: readonly GuardTable[] = [
  {
    table: 'walflow.cooldowns',
    alias: 'c',
    key: [['workflow_id', 'uuid'], ['key', 'text']],
    expired: (cutoff) => sql<boolean>`c.until < ${cutoff}`,
  },
  {
    table: 'walflow.rate_limit_windows',
    alias: 'w',
    key: [['workflow_id', 'uuid'], ['limit_index', 'integer'], ['key', 'text'], ['window_start', 'timestamptz']],
    expired: (cutoff) => sql<boolean>`w.window_start + make_interval(secs => coalesce(
      (SELECT (f.definition->'rateLimits'->w.limit_index->>'periodSeconds')::double precision FROM walflow.workflows f WHERE f.id = w.workflow_id), 0)) < ${cutoff}`,
  },
];

/** One statement of the walk: rows deleted, rows walked, the last key walked (a JSON array). */
interface WalkStep {
  deleted: string;
  walked: string;
  last: string | null;
}

/** How many guard rows a prune at `cutoff` deletes. */
export async function countExpiredGuardState(db: Kysely<WalflowDatabase>, cutoff: Date): Promise<number> {
  let total = 0;
  for (const { table, alias, expired } of GUARD_TABLES) {
    const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM ${sql.raw(table)} ${sql.raw(alias)} WHERE ${expired(cutoff)}`.execute(db);
    total += Number(rows[0]?.n ?? 0);
  }
  return total;
}

/**
 * Deletes expired guard rows, walking each table once in key order, `batch` rows a statement, so that no statement
 * scans the table again for what is left.
 */
export async function deleteExpiredGuardState(db: Kysely<WalflowDatabase>, cutoff: Date, batch: number, signal: AbortSignal | undefined): Promise<number> {
  let deleted = 0;
  for (const { table, alias, key, expired } of GUARD_TABLES) {
    const columns = sql.raw(key.map(([column]) => column).join(', '));
    const descending = sql.raw(key.map(([column]) => `${column} DESC`).join(', '));
    const matches = sql.raw(`(${key.map(([column]) => `${alias}.${column}`).join(', ')}) = (${key.map(([column]) => `walked.${column}`).join(', ')})`);
    // The last key walked, as text, read back with each column's type: where the next statement goes on from.
    const lastAsText = sql.raw(`json_build_array(${key.map(([column]) => `last.${column}`).join(', ')}) #>> '{}'`);
    const fromLast = (last: string) =>
      sql`(${columns}) > (${sql.join(key.map(([, type], index) => sql`(${last}::json->>${sql.lit(index)})::${sql.raw(type)}`))})`;
    for (let last: string | null = null; ; ) {
      signal?.throwIfAborted();
      const { rows }: QueryResult<WalkStep> = await sql<WalkStep>`
        WITH walked AS (SELECT ${columns} FROM ${sql.raw(table)} WHERE ${last === null ? sql`true` : fromLast(last)} ORDER BY ${columns} LIMIT ${batch}),
        -- Rows a dispatch holds (checking them, in no particular order) are passed over rather than waited for, so
        -- that neither waits for the other: a prune later deletes them.
        expired AS (SELECT ${sql.raw(alias)}.ctid FROM ${sql.raw(table)} ${sql.raw(alias)} JOIN walked ON ${matches}
                     WHERE ${expired(cutoff)} FOR UPDATE OF ${sql.raw(alias)} SKIP LOCKED),
        gone AS (DELETE FROM ${sql.raw(table)} WHERE ctid = ANY (ARRAY(SELECT ctid FROM expired)) RETURNING 1),
        last AS (SELECT * FROM walked ORDER BY ${descending} LIMIT 1)
        SELECT (SELECT count(*) FROM gone) AS deleted, (SELECT count(*) FROM walked) AS walked, ${lastAsText} AS last
          FROM (SELECT) AS one LEFT JOIN last ON true`.execute(db);
      const step: WalkStep = rows[0]!;
      deleted += Number(step.deleted);
      if (Number(step.walked) < batch || step.last === null) break;
      last = step.last;
    }
  }
  return deleted;
}
