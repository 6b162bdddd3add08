import { setTimeout as sleep } from 'node:timers/promises';
import type { WalflowDatabase } from '@walflow/core';
import { claimRuns, Dispatcher, executeRunBatch, getWorkflowsById, releaseExpiredLeases, type RunExecutorOptions } from '@walflow/executor';
import { createDatabase, migrate } from '@walflow/server';
import { useTestDatabase, waitFor } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, holdOpen, paymentEvent, silentLogger, waitForLockWait } from './fixtures.js';

/**
 * Leased database-only runs (a workflow with a concurrency limit) execute together in one transaction. Their
 * leases are not extended while it runs: a sweep must not take them from a worker at work, during the batch or
 * after it fails, however long it took.
 */
const database = useTestDatabase();
const policy = { updateFields: ['lease_test.accounts.balance'] };
const LEASE_MS = 1_000;
let db: Kysely<WalflowDatabase>;
let options: RunExecutorOptions;

beforeAll(async () => {
  db = createDatabase(database.url, silentLogger, { max: 8 });
  await migrate({ db, slotName: database.slotName, logger: silentLogger });
  await sql`CREATE SCHEMA lease_test`.execute(db);
  await sql`CREATE TABLE lease_test.accounts (id text PRIMARY KEY, balance numeric NOT NULL DEFAULT 0)`.execute(db);
  await sql`INSERT INTO lease_test.accounts (id) VALUES ('a1'), ('a2'), ('a3')`.execute(db);
  options = { db, logger: silentLogger, leaseMs: LEASE_MS, runtime: { ...policy, secrets: new Map(), webhookAllowHosts: [], actionTimeoutMs: 10_000 } };
});
afterAll(() => db.destroy());

describe('a leased batch that outlasts its leases and then fails', () => {
  it('keeps its runs from the sweep: the others succeed once, the failing one dies of its own failure', async () => {
    await applyTestWorkflow(
      db,
      {
        tenant: 'long-batch',
        name: 'credit',
        trigger: { event: 'payment.received' },
        concurrency: { limit: 10 },
        ordering: 'none',
        retry: { maxAttempts: 1 },
        actions: [{ type: 'update_field', table: 'lease_test.accounts', column: 'balance', key: { column: 'id', value: '{{event.payload.account}}' }, increment: 1 }],
      },
      policy,
    );
    const accounts = ['a1', 'a2', 'missing', 'a3'];
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: accounts.map((account) => paymentEvent('long-batch', { account })), parked: [], checkpoint: null });
    // a1's and a2's updates wait for these locks: the batch reaches the missing account after its leases ran out.
    const locks = [await holdOpen(db, sql`SELECT 1 FROM lease_test.accounts WHERE id = 'a1' FOR UPDATE`), await holdOpen(db, sql`SELECT 1 FROM lease_test.accounts WHERE id = 'a2' FOR UPDATE`)];
    // Others see the claim's leases until the batch commits (its own renewal is part of it). No sweep runs before the
    // batch has begun, however long that takes here.
    const claimed = await claimRuns(db, 'long-batch/0', 10, LEASE_MS);
    const account = (run: (typeof claimed)[number]) => (run.event.payload as { account: string }).account;
    const runs = accounts.map((name) => claimed.find((run) => account(run) === name)!);
    const ids = runs.map((run) => run.id);
    let sweeping = false;
    let sweeps: Promise<void> = Promise.resolve();
    let results: Map<string, string>;
    try {
      const batch = executeRunBatch(runs, await getWorkflowsById(db, [runs[0]!.workflowId]), 'long-batch/0', options);
      await waitForLockWait(db, 'the batch to wait for a1', '%lease_test%');
      await waitFor("the batch's leases to run out", async () => {
        const { rows } = await sql<{ out: boolean }>`SELECT bool_and(locked_until < now()) AS out FROM walflow.workflow_runs WHERE id = ANY(${ids}::uuid[])`.execute(db);
        return rows[0]!.out;
      });
      // A sweep passes the batch's rows over rather than wait until the batch lets them go.
      expect(await Promise.race([releaseExpiredLeases(db, silentLogger).then(() => 'swept'), sleep(5_000).then(() => 'waited')])).toBe('swept');
      // Sweeping on, as the workers of other processes do, while the batch fails and its runs take their turns.
      sweeping = true;
      sweeps = (async () => {
        while (sweeping) {
          await releaseExpiredLeases(db, silentLogger);
          await sleep(100);
        }
      })();
      for (const lock of locks) await lock.release();
      results = await batch;
    } finally {
      sweeping = false;
      await sweeps;
      for (const lock of locks) await lock.release();
    }
    expect(runs.map((run) => results.get(run.id))).toEqual(['succeeded', 'succeeded', 'dead', 'succeeded']);
    const missing = await db.selectFrom('walflow.workflow_runs').select('last_error').where('id', '=', runs[2]!.id).executeTakeFirstOrThrow();
    expect(missing.last_error).not.toBe('worker lease expired');
    const balances = await sql<{ id: string; balance: string }>`SELECT id, balance::text FROM lease_test.accounts ORDER BY id`.execute(db);
    expect(balances.rows).toEqual([
      { id: 'a1', balance: '1' },
      { id: 'a2', balance: '1' },
      { id: 'a3', balance: '1' },
    ]);
  });
});
