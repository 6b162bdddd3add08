import type { WalflowDatabase } from '@walflow/core';
import { useTestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openMigrated } from './fixtures.js';

/** The indexes with text keys that queued runs enter (migration 0024; the chain index holds caused runs only since 0030). */
const RUN_INDEXES = ['workflow_runs_caused_chain', 'workflow_runs_unfinished_by_aggregate'];

const database = useTestDatabase({ prefix: 'walflow_collations' });
let db: Kysely<WalflowDatabase>;

beforeAll(async () => {
  db = await openMigrated(database);
});
afterAll(async () => {
  await db.destroy();
});

describe('the text keys of the indexes a queued run enters', () => {
  it('compare bytewise (C), whatever the database collation, so no insert calls strcoll', async () => {
    const { rows } = await sql<{ index: string; column: string; collation_name: string }>`
      SELECT i.relname AS index, a.attname AS column, c.collname AS collation_name
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        CROSS JOIN LATERAL unnest(x.indkey::int2[], x.indcollation::oid[]) AS k(attnum, collation_oid)
        JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
        JOIN pg_collation c ON c.oid = k.collation_oid
       WHERE i.relnamespace = 'walflow'::regnamespace AND i.relname = ANY(${RUN_INDEXES}) AND a.atttypid = 'text'::regtype
       ORDER BY 1, 2`.execute(db);
    expect(rows.map((row) => `${row.index}.${row.column}`)).toEqual([
      'workflow_runs_caused_chain.aggregate_id',
      'workflow_runs_caused_chain.aggregate_type',
      'workflow_runs_unfinished_by_aggregate.aggregate_id',
      'workflow_runs_unfinished_by_aggregate.aggregate_type',
    ]);
    expect(new Set(rows.map((row) => row.collation_name))).toEqual(new Set(['C']));
  });
});
