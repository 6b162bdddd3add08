import type { Kysely, Transaction } from 'kysely';

/**
 * Runs `work` in `db` when `db` is a transaction already, else in a transaction of its own: a caller can make it
 * one with what it does next (an operator's action and its audit entry).
 */
export function inTransaction<Database, Result>(db: Kysely<Database>, work: (trx: Transaction<Database>) => Promise<Result>): Promise<Result> {
  return db.isTransaction ? work(db as Transaction<Database>) : db.transaction().execute(work);
}
