import { setTimeout as sleep } from 'node:timers/promises';
import type { WalflowDatabase } from '@walflow/core';
import { claimRuns, Dispatcher } from '@walflow/executor';
import { useTestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, holdOpen, openMigrated, paymentEvent, silentLogger, waitForLockWait } from './fixtures.js';
import { keepLease } from '../../executor/src/lease-keeper.js';

const database = useTestDatabase();
const LEASE_MS = 3_000;
let db: Kysely<WalflowDatabase>;

beforeAll(async () => {
  db = await openMigrated(database);
});
afterAll(() => db.destroy());

describe("a run's lease keeper", () => {
  it('once stopped, starts no clock from an extension that was on its way: nothing is aborted a lease later', async () => {
    // A concurrency limit: its runs are leased.
    await applyTestWorkflow(db, { tenant: 'keeper', name: 'limited', trigger: { event: 'payment.received' }, concurrency: { limit: 1 }, actions: [{ type: 'emit_event', event: 'x.y' }] });
    await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent('keeper')], parked: [], checkpoint: null });
    const [run] = await claimRuns(db, 'keeper/0', 1, LEASE_MS);
    const keeper = (await keepLease(db, run!.id, 'keeper/0', LEASE_MS, silentLogger))!;
    // The next extension waits for the run's row, as behind the run's own database action.
    const lock = await holdOpen(db, sql`SELECT 1 FROM walflow.workflow_runs WHERE id = ${run!.id}::uuid FOR UPDATE`);
    await waitForLockWait(db, 'the extension to wait for the run', '%locked_until%');
    keeper.stop();
    // Stopped well within the lease: what follows is the late extension's doing alone.
    expect(keeper.lost.aborted).toBe(false);
    await lock.release();
    await sleep(LEASE_MS + 300);
    expect(keeper.lost.aborted).toBe(false);
  });
});
