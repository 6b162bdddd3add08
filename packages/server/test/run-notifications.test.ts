import { randomUUID } from 'node:crypto';
import { RunQueueListener } from '@walflow/executor';
import { emit } from '@walflow/outbox';
import { createDatabase, retryDeadRun, type RunningWalflow } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, silentLogger, startTestWalflow } from './fixtures.js';

const database = useTestDatabase();
/** No workers of its own: the only wakes counted are the listener's. */
let walflow: RunningWalflow;
let listener: RunQueueListener;
let wakes = 0;

beforeAll(async () => {
  walflow = await startTestWalflow(database.url, database.slotName, { workerConcurrency: 0 });
  listener = new RunQueueListener({
    connection: { connectionString: database.url },
    logger: silentLogger,
    onRunsQueued: () => wakes++,
    reconnect: { initialMs: 50, maxMs: 200 },
  });
  listener.start();
  // It wakes once when it starts listening: runs may have been queued before.
  await waitFor('the listener to connect', () => wakes > 0);
});
afterAll(async () => {
  await listener?.stop();
  await walflow?.stop();
});

/** A run row written by hand, with `rows` rows (0 or 1), to see what the trigger does with it. */
function insertRuns(rows: 0 | 1) {
  return sql`
    INSERT INTO walflow.workflow_runs (workflow_id, workflow_version, event_id, event_committed_at, event_type, commit_lsn, tx_position)
    SELECT ${randomUUID()}::uuid, 1, ${randomUUID()}::uuid, now(), 'job.requested', '0/1', 0 FROM generate_series(1, ${rows})`;
}

async function listenerBackends(): Promise<number[]> {
  const { rows } = await sql<{ pid: number }>`
    SELECT pid FROM pg_stat_activity WHERE application_name = 'walflow-run-listener' AND datname = current_database()`.execute(walflow.db);
  return rows.map((row) => row.pid);
}

describe('LISTEN/NOTIFY for queued runs', () => {
  it('wakes when a transaction that queued runs commits, and not for a rollback or a statement that queued nothing', async () => {
    const { db } = walflow;
    await applyTestWorkflow(db, { tenant: 'notify', name: 'on-request', trigger: { event: 'job.requested' }, actions: [{ type: 'emit_event', event: 'job.done' }] });
    wakes = 0;
    await emit(db, { type: 'job.requested', tenantId: 'notify', payload: {} });
    await waitFor('a wake for the queued run', () => wakes === 1);

    await db
      .transaction()
      .execute(async (trx) => {
        await insertRuns(1).execute(trx);
        throw new Error('rolled back on purpose');
      })
      .catch(() => undefined);
    await insertRuns(0).execute(db);
    // A wake, were one sent, arrives within milliseconds; give it ample time to show up.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(wakes).toBe(1);
  });

  it('listens again after its connection is cut', async () => {
    const { db } = walflow;
    const [before] = await listenerBackends();
    expect(before).toBeDefined();
    wakes = 0;
    await sql`SELECT pg_terminate_backend(${before!})`.execute(db);
    await waitFor('a new listening connection', async () => {
      const pids = await listenerBackends();
      return pids.length === 1 && pids[0] !== before && wakes === 1;
    });
    await emit(db, { type: 'job.requested', tenantId: 'notify', payload: {} });
    await waitFor('a wake for the run queued after the reconnect', () => wakes === 2);
  });

  it('ignores the notifications of its own process’s connections, whose writers woke the workers already', async () => {
    const backendPids = new Set<number>();
    const own = createDatabase(database.url, silentLogger, { max: 1, backendPids });
    let ownWakes = 0;
    const filtered = new RunQueueListener({ connection: { connectionString: database.url }, logger: silentLogger, ownBackends: backendPids, onRunsQueued: () => ownWakes++ });
    filtered.start();
    try {
      await waitFor('the filtered listener to connect', () => ownWakes > 0);
      ownWakes = 0;
      await insertRuns(1).execute(own);
      expect(backendPids.size).toBe(1);
      await insertRuns(1).execute(walflow.db);
      await waitFor('a wake for the run queued through another pool', () => ownWakes === 1);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(ownWakes).toBe(1);
    } finally {
      await filtered.stop();
      await own.destroy();
    }
  });

  it('wakes when a dead run is retried, which queues it by an update', async () => {
    const { db } = walflow;
    // A run is retried only with its event, which a worker reads when it claims the run.
    const { rows } = await sql<{ id: string }>`
      WITH event AS (
        INSERT INTO walflow.events (id, event_type, payload, committed_at, commit_lsn, tx_position, xid)
        VALUES (${randomUUID()}::uuid, 'job.requested', '{}', now(), '0/1', 0, 3) RETURNING id, committed_at)
      INSERT INTO walflow.workflow_runs (workflow_id, workflow_version, event_id, event_committed_at, event_type, commit_lsn, tx_position, status, attempts)
      SELECT ${randomUUID()}::uuid, 1, event.id, event.committed_at, 'job.requested', '0/1', 0, 'dead', 3 FROM event RETURNING id`.execute(db);
    // Let any wake for the insert itself arrive before counting.
    await new Promise((resolve) => setTimeout(resolve, 500));
    wakes = 0;
    await retryDeadRun(db, rows[0]!.id);
    await waitFor('a wake for the retried run', () => wakes === 1);
  });
});
