import type { WalflowDatabase } from '@walflow/core';
import { sql, type Kysely, type Transaction } from 'kysely';
import { anyUuid } from './any-uuid.js';

/** How long a leased run stays with its worker unless extended. */
export const DEFAULT_LEASE_MS = 60_000;

/** Extends this worker's lease of a run by `leaseMs` from now; false when the lease is no longer its own. */
export async function extendLease(db: Kysely<WalflowDatabase>, runId: string, workerId: string, leaseMs: number): Promise<boolean> {
  return (await extendLeases(db, [runId], workerId, leaseMs)).has(runId);
}

/**
 * extendLease for many runs at once; returns those whose lease is still this worker's. From the statement's own
 * time (clock_timestamp), not its transaction's start: a claim extends the leases it took at its end. With
 * `skipLocked`, runs whose rows are locked (one executing now, fenced by its lease) are passed over, not waited for.
 */
export async function extendLeases(
  db: Kysely<WalflowDatabase>,
  runIds: readonly string[],
  workerId: string,
  leaseMs: number,
  options: { skipLocked?: boolean } = {},
): Promise<Set<string>> {
  if (runIds.length === 0) return new Set();
  const rows = await db
    .updateTable('walflow.workflow_runs')
    .set({ locked_until: sql`clock_timestamp() + ${leaseMs} * interval '1 millisecond'` })
    .where('id', 'in', (eb) => {
      const held = eb.selectFrom('walflow.workflow_runs').select('id').where('id', '=', anyUuid(runIds)).where('status', '=', 'running').where('locked_by', '=', workerId).forUpdate();
      return options.skipLocked ? held.skipLocked() : held;
    })
    .returning('id')
    .execute();
  return new Set(rows.map((row) => row.id));
}

/**
 * Locks the run if this worker still holds its lease. Every outcome write is fenced by it: a worker whose
 * lease expired cannot record over the new owner's work.
 */
export async function holdsLease(trx: Transaction<WalflowDatabase>, runId: string, workerId: string): Promise<boolean> {
  const row = await trx
    .selectFrom('walflow.workflow_runs')
    .select('id')
    .where('id', '=', runId)
    .where('status', '=', 'running')
    .where('locked_by', '=', workerId)
    .forUpdate()
    .executeTakeFirst();
  return row !== undefined;
}
