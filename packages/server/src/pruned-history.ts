import type { WalflowDatabase } from '@walflow/core';
import { sql, type Kysely } from 'kysely';
import { RETENTION_ACTOR } from './retention.js';

// What the audited prunes say of the event log, whoever ran them: the operator's shell need not hold the settings of
// the processes that prune every day.

/** The latest cutoff any prune removed events before, or null when none was audited (within the audit log's year). */
export async function prunedBefore(db: Kysely<WalflowDatabase>): Promise<Date | null> {
  const { rows } = await sql<{ before: Date | null }>`
    SELECT max((arguments->>'olderThan')::timestamptz) AS before FROM walflow.audit_log WHERE action = 'prune'`.execute(db);
  return rows[0]?.before ?? null;
}

/** The retention window, in days, of the processes' last daily prune, or null when they have not pruned. */
export async function processRetentionDays(db: Kysely<WalflowDatabase>): Promise<number | null> {
  const { rows } = await sql<{ days: number | null }>`
    SELECT (arguments->>'retentionDays')::int AS days FROM walflow.audit_log
     WHERE action = 'prune' AND actor = ${RETENTION_ACTOR} ORDER BY at DESC LIMIT 1`.execute(db);
  return rows[0]?.days ?? null;
}
