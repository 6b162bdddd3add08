import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { withClient } from '../harness/pg-client.js';
import { ORDER_PLACED, orderEvent, orderPayloadSql } from '../workload.js';
import { RECORDED_TABLE_SQL, type Peer, type RunningPeer } from './peer.js';

/** Rows taken per transaction. */
const BATCH_SIZE = 500;
/**
 * Pause when the outbox is empty: the price of polling, paid in latency (and in load when it is shorter). Short,
 * as a team that cares about latency would set it: an empty indexed SELECT every 10 ms costs next to nothing.
 */
const IDLE_MS = 10;
/** Loops polling at once, one per core of this machine: what SKIP LOCKED is for. */
const POLLERS = 2;

interface OutboxRow {
  id: string;
  event_type: string;
  aggregate_type: string | null;
  aggregate_id: string | null;
  payload: unknown;
  committed_at: string;
}

/**
 * The outbox most teams start from: the same table as walflow's outbox, and loops that take the oldest rows
 * with SELECT … FOR UPDATE SKIP LOCKED, record them and delete them in the same transaction.
 */
export const pollingOutbox: Peer = {
  name: 'polling outbox',
  description: `polling outbox: walflow's outbox table, ${POLLERS} loops of SELECT … ORDER BY id LIMIT ${BATCH_SIZE} FOR UPDATE SKIP LOCKED, INSERT into bench.recorded, DELETE, COMMIT; ${IDLE_MS} ms pause when empty`,
  async setup(url) {
    await withClient(url, (client) => client.query(`${RECORDED_TABLE_SQL}; CREATE TABLE bench.poll_outbox (LIKE walflow.outbox INCLUDING ALL)`));
  },
  backlogInsert: `
    INSERT INTO bench.poll_outbox (event_type, aggregate_type, aggregate_id, payload)
    SELECT '${ORDER_PLACED}', 'order', 'order-' || n, ${orderPayloadSql('n')} FROM generate_series($1 + 1, $1 + $2) AS n`,
  loadStatement(n) {
    const event = orderEvent(n);
    return {
      text: 'INSERT INTO bench.poll_outbox (event_type, aggregate_type, aggregate_id, payload) VALUES ($1, $2, $3, $4::jsonb)',
      values: [event.type, event.aggregateType, event.aggregateId, JSON.stringify(event.payload)],
    };
  },
  drained: 'NOT EXISTS (SELECT FROM bench.poll_outbox)',
  async start(url) {
    const clients = Array.from({ length: POLLERS }, () => new pg.Client({ connectionString: url, application_name: 'walflow-bench-polling-outbox' }));
    await Promise.all(clients.map((client) => client.connect()));
    let running = true;
    let failure: Error | undefined;
    const loops = clients.map(async (client) => {
      try {
        while (running) {
          if ((await pollOnce(client)) === 0) await sleep(IDLE_MS);
        }
      } catch (error) {
        failure ??= error instanceof Error ? error : new Error(String(error));
        running = false;
      }
    });
    const peer: RunningPeer = {
      async stop() {
        running = false;
        await Promise.all(loops);
        await Promise.all(clients.map((client) => client.end()));
        if (failure !== undefined) throw failure;
      },
    };
    return peer;
  },
};

async function pollOnce(client: pg.Client): Promise<number> {
  await client.query('BEGIN');
  try {
    const { rows } = await client.query<OutboxRow>(
      `SELECT id, event_type, aggregate_type, aggregate_id, payload, pg_xact_commit_timestamp(xmin)::text AS committed_at
         FROM bench.poll_outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`,
      [BATCH_SIZE],
    );
    if (rows.length > 0) {
      const ids = rows.map((row) => row.id);
      await client.query(
        `INSERT INTO bench.recorded (id, event_type, aggregate_type, aggregate_id, payload, committed_at)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::timestamptz[])`,
        [ids, rows.map((row) => row.event_type), rows.map((row) => row.aggregate_type), rows.map((row) => row.aggregate_id), rows.map((row) => JSON.stringify(row.payload)), rows.map((row) => row.committed_at)],
      );
      await client.query('DELETE FROM bench.poll_outbox WHERE id = ANY($1::uuid[])', [ids]);
    }
    await client.query('COMMIT');
    return rows.length;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}
