import { setTimeout as sleep } from 'node:timers/promises';
import { withClient } from './pg-client.js';

export interface BacklogShape {
  transactions: number;
  eventsPerTransaction: number;
}

export interface WrittenBacklog {
  events: number;
  /** The WAL insert position after the last commit: where a reader of this backlog may stop. */
  endLsn: string;
  seconds: number;
}

/**
 * Commits `transactions` transactions inside the server, each running `insertSql` with $1 = the number of events
 * written before it and $2 = events per transaction. Asynchronous commit keeps the set-up short; the WAL is the
 * same as with synchronous commit, and the bench waits until it is flushed, since decoding reads flushed WAL only.
 */
export async function writeBacklog(url: string, insertSql: string, shape: BacklogShape, firstOrder = 0): Promise<WrittenBacklog> {
  const started = performance.now();
  return withClient(url, async (client) => {
    await client.query(`
      CREATE SCHEMA IF NOT EXISTS bench;
      CREATE OR REPLACE PROCEDURE bench.write_backlog(insert_sql text, first_order bigint, transactions integer, per_transaction integer)
      LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM set_config('synchronous_commit', 'off', false);
        FOR t IN 0 .. transactions - 1 LOOP
          EXECUTE insert_sql USING first_order + t::bigint * per_transaction, per_transaction;
          COMMIT;
        END LOOP;
      END
      $$;`);
    // CALL runs with the simple protocol, where a procedure may commit.
    await client.query(
      `CALL bench.write_backlog(${client.escapeLiteral(insertSql)}, ${firstOrder}, ${shape.transactions}, ${shape.eventsPerTransaction})`,
    );
    const { rows } = await client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    const endLsn = rows[0]!.lsn;
    for (;;) {
      const flushed = await client.query<{ done: boolean }>('SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn AS done', [endLsn]);
      if (flushed.rows[0]!.done) break;
      await sleep(20);
    }
    return { events: shape.transactions * shape.eventsPerTransaction, endLsn, seconds: (performance.now() - started) / 1000 };
  });
}
