import type { WalflowDatabase } from '@walflow/core';
import { claimRuns, Dispatcher, executeRunBatch, getWorkflowsById, type RunExecutorOptions } from '@walflow/executor';
import { createDatabase, migrate } from '@walflow/server';
import { useTestDatabase } from '@walflow/testing';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyTestWorkflow, paymentEvent, silentLogger } from './fixtures.js';

/** A workflow pauses itself after runs that died one after another: a run that succeeded in between starts the count again. */
const database = useTestDatabase();
const policy = { updateFields: ['pause_test.accounts.balance'] };
let db: Kysely<WalflowDatabase>;
let options: RunExecutorOptions;

beforeAll(async () => {
  db = createDatabase(database.url, silentLogger);
  await migrate({ db, slotName: database.slotName, logger: silentLogger });
  await sql`CREATE SCHEMA pause_test`.execute(db);
  await sql`CREATE TABLE pause_test.accounts (id text PRIMARY KEY, balance numeric NOT NULL DEFAULT 0)`.execute(db);
  await sql`INSERT INTO pause_test.accounts (id) VALUES ('exists')`.execute(db);
  options = { db, logger: silentLogger, runtime: { ...policy, secrets: new Map(), webhookAllowHosts: [] } };
});
afterAll(() => db.destroy());

/** Records a payment to the account, then claims and executes its run; returns how the run ended. */
async function payAndRun(account: string): Promise<string | undefined> {
  await new Dispatcher({ db, slotName: database.slotName, logger: silentLogger }).dispatch({ events: [paymentEvent('pausing', { account })], parked: [], checkpoint: null });
  const runs = await claimRuns(db, 'pausing/0', 10, 60_000);
  expect(runs).toHaveLength(1);
  const workflows = await getWorkflowsById(db, [runs[0]!.workflowId]);
  return (await executeRunBatch(runs, workflows, 'pausing/0', options)).get(runs[0]!.id);
}

describe('the count of dead runs that pauses a workflow', () => {
  it('counts deaths in a row only: a success between two deaths leaves the workflow active, one death counted', async () => {
    const workflowId = await applyTestWorkflow(
      db,
      {
        tenant: 'pausing',
        name: 'credit',
        trigger: { event: 'payment.received' },
        retry: { maxAttempts: 1 },
        autoPause: { afterConsecutiveFailures: 2 },
        actions: [{ type: 'update_field', table: 'pause_test.accounts', column: 'balance', key: { column: 'id', value: '{{event.payload.account}}' }, increment: 1 }],
      },
      policy,
    );
    expect([await payAndRun('missing'), await payAndRun('exists'), await payAndRun('missing')]).toEqual(['dead', 'succeeded', 'dead']);
    const workflow = await db.selectFrom('walflow.workflows').select(['status', 'consecutive_failures']).where('id', '=', workflowId).executeTakeFirstOrThrow();
    expect(workflow).toEqual({ status: 'active', consecutive_failures: 1 });
    const paused = await db.selectFrom('walflow.outbox').select('id').where('tenant_id', '=', 'pausing').where('event_type', '=', 'workflow.auto_paused').execute();
    expect(paused).toEqual([]);
  });
});
