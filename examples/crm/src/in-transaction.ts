import type { Kysely, Transaction } from 'kysely';

/**
 * Runs `work` in the caller's transaction when given one (so the caller decides what commits together), else in a
 * new one. Either way a service's write and its events share one transaction.
 */
export function inTransaction<DB, T>(db: Kysely<DB>, work: (trx: Transaction<DB>) => Promise<T>): Promise<T> {
  return db.isTransaction ? work(db as Transaction<DB>) : db.transaction().execute(work);
}
